"""The generate workload's pure parts: profile shape, plan, prompts, per-token figures, text
fidelity metrics. Known answers, no worker processes (tests/test_generate_session.py runs them)."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import pytest
from energy_console.core.measure.carbon import CarbonIntensity
from energy_console.core.measure.energy import NoEnergyWindows, quadrature, run_figures
from energy_console.core.measure.sensors.base import SensorInfo
from energy_console.core.measure.stats import ci95_half_width, median, median_ci95_half_width
from energy_console.core.quality.datasets import DatasetError, dataset_spec, load_prompts
from energy_console.core.quality.text_metrics import chrf, exact_match_rate, token_agreement
from energy_console.core.session.plan import expand
from energy_console.core.session.profile_check import parse_profile
from energy_console.core.spec.profile import ProfileError
from energy_console.core.spec.workloads import GenerationSettings
from energy_console.core.store.figures import GenerationTimings, WindowEnergy, compact_ids
from energy_console.core.store.records import RUN_COLUMNS

ROOT = Path(__file__).resolve().parent.parent
CPU = SensorInfo("rapl:package-0", "cpu", True, "counter", update_period_s=0.001)
GRID = CarbonIntensity(500.0, "profile")

GENERATE_PROFILE = """\
name: g
models:
  - demo: demo/tiny-gpt2-random
    workload: generate
    dataset: ../data/prompts-text.jsonl
  - demo/tiny-bert-random
techniques: [baseline, dynamic-int8]
inputs: {batch_sizes: [1], sequence_lengths: [64], max_new_tokens: [8, 16]}
"""


# ------------------------------------------------------------------------ profile and plan


def test_a_generate_model_runs_once_per_max_new_tokens_and_infer_models_are_unchanged():
    profile = parse_profile(GENERATE_PROFILE)
    ids = [s.run_id for s in expand(profile)]
    assert ids == [
        "tiny-gpt2-random__baseline__b1-s64-n8", "tiny-gpt2-random__baseline__b1-s64-n16",
        "tiny-gpt2-random__dynamic-int8__b1-s64-n8", "tiny-gpt2-random__dynamic-int8__b1-s64-n16",
        "tiny-bert-random__baseline__b1-s64", "tiny-bert-random__dynamic-int8__b1-s64",
    ]
    specs = expand(profile)
    assert {(s.workload, s.max_new_tokens) for s in specs[:4]} == {("generate", 8),
                                                                    ("generate", 16)}
    assert {(s.workload, s.max_new_tokens) for s in specs[4:]} == {("infer", None)}


def test_a_generate_profile_saves_back_to_the_same_profile():
    profile = parse_profile(GENERATE_PROFILE.replace(
        "workload: generate", "workload: generate\n    generation: {do_sample: true, top_p: 0.9}"))
    again = parse_profile(profile.to_yaml())
    assert again == profile
    assert again.models[0].generation == GenerationSettings(do_sample=True, top_p=0.9)
    assert again.inputs.max_new_tokens == (8, 16)


@pytest.mark.parametrize(("edit", "key", "fix"), [
    ("workload: generate", "models[0].workload", "expected one of infer, generate"),
    ("workload: generate\n    generation: {temperature: 0.5}", "models[0].generation",
     "add `do_sample: true`"),
    ("workload: generate\n    generation: {beams: 4}", "models[0].generation",
     "allowed: do_sample"),
    ("workload: generate\n    generation: {do_sample: true, top_p: 2}",
     "models[0].generation.top_p", ">= 1e-06 and <= 1"),
])
def test_bad_generation_settings_name_the_key_and_the_fix(edit, key, fix):
    text = GENERATE_PROFILE.replace("workload: generate", edit)
    if key.endswith("workload"):
        text = text.replace("workload: generate", "workload: sample")
    with pytest.raises(ProfileError) as caught:
        parse_profile(text)
    assert key in str(caught.value) and fix in str(caught.value)


def test_generate_on_a_classifier_is_refused_when_the_profile_loads():
    text = "name: g\nmodels:\n  - {demo: demo/tiny-bert-random, workload: generate}\n"
    with pytest.raises(ProfileError, match="generate runs need a causal-lm model"):
        parse_profile(text)


def test_fixed_length_is_the_default_and_can_be_turned_off():
    assert GenerationSettings().fixed_length is True
    profile = parse_profile(GENERATE_PROFILE.replace(
        "workload: generate", "workload: generate\n    generation: {fixed_length: false}"))
    assert profile.models[0].generation.fixed_length is False
    assert parse_profile(profile.to_yaml()) == profile
    with pytest.raises(ProfileError, match="fixed_length"):
        parse_profile(GENERATE_PROFILE.replace(
            "workload: generate", "workload: generate\n    generation: {fixed_length: 32}"))


def test_generation_settings_on_an_infer_model_are_refused():
    text = "name: g\nmodels:\n  - {demo: demo/tiny-gpt2-random, generation: {seed: 1}}\n"
    with pytest.raises(ProfileError, match="add `workload: generate`"):
        parse_profile(text)


# ------------------------------------------------------------------------------- prompts


def test_the_shipped_prompt_sets_load(tmp_path):
    text = load_prompts(dataset_spec(str(ROOT / "data/prompts-text.jsonl")))
    code = load_prompts(dataset_spec(str(ROOT / "data/prompts-code.jsonl")))
    assert len(text) == 16 and len(code) == 12
    assert code[0].startswith("def add(a, b):\n")


def test_prompts_from_text_lines_and_max_samples(tmp_path):
    path = tmp_path / "p.txt"
    path.write_text("one\n\ntwo\nthree\nfour\n")
    assert load_prompts(dataset_spec(str(path))) == ["one", "two", "three", "four"]
    assert load_prompts(dataset_spec({"path": str(path), "max_samples": 2})) == ["one", "three"]


def test_a_broken_jsonl_prompt_names_the_line_and_the_format(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text('{"prompt": "ok"}\n{"text": "no prompt key"}\n')
    with pytest.raises(DatasetError, match=r"line 2: no `prompt` string"):
        load_prompts(dataset_spec(str(path)))


# -------------------------------------------------------------------- per-token figures


def timings(prefill_tokens=(100, 100, 100), made=(160, 160, 160)) -> GenerationTimings:
    """3 repeats: (prefill window, full window) × 3; 10 prompts of 10 tokens in each window."""
    return GenerationTimings(
        max_new_tokens=16, window_kinds=("prefill", "generate") * 3,
        sequences=(10,) * 6, prompt_tokens=(prefill_tokens[0], 100, prefill_tokens[1], 100,
                                            prefill_tokens[2], 100),
        output_tokens=(10, made[0], 10, made[1], 10, made[2]),
        ttft_ms=(5.0, 6.0, 7.0), tpot_ms=(1.0, 2.0, 3.0, 4.0), prefill_latencies_ms=(5.0,),
        decode_ms=(300.0, 300.0, 300.0), prompt_ids=tuple(range(10)), passes=(1,) * 6)


def gen_figures(prefill_j, full_j, gen=None):
    windows = []
    for p, f in zip(prefill_j, full_j, strict=True):
        windows += [WindowEnergy(1.0, {CPU.name: p}), WindowEnergy(2.0, {CPU.name: f})]
    return run_figures(windows=windows, iterations=(10, 10, 10), batch_size=1, sensors=[CPU],
                       idle_power_w={}, latencies_ms=((100.0,),), max_spread=10.0,
                       intensity=GRID, generation=gen or timings())


def test_decode_is_full_minus_prefill_per_prompt_and_per_token():
    figures = gen_figures(prefill_j=(2.0, 2.0, 2.0), full_j=(20.0, 20.0, 20.0))
    g = figures.generation
    assert figures.energy_j_per_inference == pytest.approx(2.0)  # 20 J for 10 prompts
    assert g.energy_j_per_prompt_token == pytest.approx(0.02)  # 2 J for 100 prompt tokens
    assert g.prefill_energy_j_per_inference == pytest.approx(0.2)
    assert g.decode_energy_j_per_inference == pytest.approx(1.8)
    assert g.energy_j_per_output_token == pytest.approx(20.0 / 160)
    # one divisor for every per-output-token figure: all 160 tokens made
    assert g.decode_energy_j_per_output_token == pytest.approx(18.0 / 160)
    assert g.decode_energy_j_per_output_token + 2.0 / 160 == pytest.approx(
        g.energy_j_per_output_token)
    assert g.e2e_tokens_per_s == pytest.approx(160 / 2.0)  # 3 full windows of 2 s, 480 tokens
    assert g.decode_tokens_per_s == pytest.approx((480 - 30) / 0.9)  # 3 calls' 300 ms of decode
    assert (g.prompt_tokens, g.output_tokens) == (10.0, 16.0)
    assert (g.ttft_ms_p50, g.tpot_ms_p50) == (6.0, 2.5)
    assert g.prompt_ids == "0-9"


def test_prefill_latency_ttft_and_tpot_carry_their_intervals():
    gen = dataclasses.replace(timings(), ttft_ms=tuple(float(x) for x in range(1, 21)),
                              tpot_ms=(2.0,) * 30, prefill_latencies_ms=(4.0, 5.0, 6.0, 5.0))
    g = gen_figures((2.0,) * 3, (20.0,) * 3, gen).generation
    assert g.ttft_ms_p50 == 10.5 and g.ttft_ms_p50_ci95 == median_ci95_half_width(gen.ttft_ms)
    assert g.ttft_ms_p50_ci95 > 0 and g.tpot_ms_p50_ci95 == 0.0
    assert (g.prefill_latency_ms_p50, g.prefill_latency_ms_mean) == (5.0, 5.0)
    assert g.prefill_latency_ms_mean_ci95 == pytest.approx(ci95_half_width((4.0, 5.0, 6.0, 5.0)))
    assert g.prefill_latency_ms_p50_ci95 is None  # too few calls for an order-statistics interval


def test_prompt_ids_read_as_runs_of_consecutive_positions():
    assert compact_ids((0, 1, 2, 3, 7, 0, 9, 10)) == "0-3 7 9-10"
    assert compact_ids(()) == ""

def test_the_interval_of_decode_adds_full_and_prefill_in_quadrature():
    prefill, full = (1.8, 2.0, 2.4), (19.0, 20.0, 22.0)
    g = gen_figures(prefill, full).generation
    per_prompt_prefill = [p / 10 for p in prefill]
    expected = math.hypot(ci95_half_width([f / 10 for f in full]),
                          ci95_half_width(per_prompt_prefill))
    assert g.decode_energy_j_per_inference_ci95 == pytest.approx(expected)
    assert g.prefill_energy_j_per_inference == pytest.approx(median(per_prompt_prefill))
    assert quadrature(3.0, 4.0) == 5.0 and quadrature(None, 1.0) is None


def test_a_run_that_stops_early_is_charged_per_token_made():
    g = gen_figures((2.0,) * 3, (20.0,) * 3, timings(made=(40, 40, 40))).generation
    assert g.energy_j_per_output_token == pytest.approx(20.0 / 40)
    assert g.output_tokens == 4.0


def test_windows_that_do_not_match_the_marked_kinds_are_an_error():
    windows = [WindowEnergy(1.0, {CPU.name: 1.0})] * 5
    with pytest.raises(NoEnergyWindows, match="5 energy windows for 6 marked"):
        run_figures(windows=windows, iterations=(1, 1, 1), batch_size=1, sensors=[CPU],
                    idle_power_w={}, latencies_ms=((1.0,),), max_spread=1.0, intensity=GRID,
                    generation=timings())


def test_infer_figures_fill_no_generation_column():
    windows = [WindowEnergy(1.0, {CPU.name: 1.0})] * 3
    figures = run_figures(windows=windows, iterations=(1, 1, 1), batch_size=1, sensors=[CPU],
                          idle_power_w={}, latencies_ms=((1.0,),), max_spread=1.0,
                          intensity=GRID)
    columns = figures.columns()
    assert figures.generation is None
    assert not {"energy_j_per_output_token", "ttft_ms_p50", "output_tokens"} & set(columns)
    assert {"energy_j_per_output_token", "ttft_ms_p50", "tpot_ms_p95"} <= set(RUN_COLUMNS)


# ------------------------------------------------------------------------- text fidelity


def test_chrf_is_100_for_the_same_text_0_for_nothing_shared_and_between_otherwise():
    assert chrf(["the cat sat"], ["the cat sat"]) == 100.0
    assert chrf(["xyz"], ["abc"]) == 0.0
    assert 0.0 < chrf(["the cat sat on a mat"], ["the cat sat on the mat"]) < 100.0
    assert chrf(["the cat"], ["the  cat"]) == 100.0  # whitespace is not scored


def test_exact_match_and_token_agreement_count_length_differences():
    reference = [[1, 2, 3, 4], [5, 6]]
    assert exact_match_rate(reference, reference) == 1.0
    assert token_agreement(reference, reference) == 1.0
    assert exact_match_rate([[1, 2, 3], [5, 6]], reference) == 0.5
    assert token_agreement([[1, 2, 3], [5, 6]], reference) == 5 / 6  # the missing 4 disagrees
    assert token_agreement([[1, 2, 3, 4, 9], [5, 7]], reference) == 5 / 7  # 9 is extra


# ----------------------------------------------------------------------- KV-cache techniques


def _demo_lm_spec():
    return expand(parse_profile(
        "name: kv\nmodels:\n  - demo: demo/tiny-gpt2-random\n    workload: generate\n"
        f"    dataset: {{path: {ROOT / 'data/prompts-text.jsonl'}, max_samples: 2}}\n"
        "inputs: {batch_sizes: [2], sequence_lengths: [32], max_new_tokens: [6]}\n"), "cpu")[0]


@pytest.mark.parametrize("technique", ["kv-cache-quant", "static-cache"])
def test_kv_cache_techniques_are_skipped_with_the_reason_outside_generate_runs(technique):
    from energy_console.core.compression import TechniqueContext, apply_technique, parse_technique
    from energy_console.core.models.base import NotApplicable

    ctx = TechniqueContext(device="cpu", task="causal-lm", loaded=None, calibration_inputs=list)
    with pytest.raises(NotApplicable, match="applies to generate runs only"):
        apply_technique(object(), parse_technique(technique), ctx)


def test_a_static_cache_generates_what_the_dynamic_one_does():
    import torch
    from energy_console.core.compression import TechniqueContext, apply_technique, parse_technique
    from energy_console.core.models import load_model
    from energy_console.core.quality.prompts import batches, greedy_outputs, prepare_prompts

    loaded = load_model(_demo_lm_spec().model, "cpu")
    ctx = TechniqueContext(device="cpu", task=loaded.task, loaded=loaded, calibration_inputs=list,
                           workload="generate")
    prompts = prepare_prompts(loaded, _demo_lm_spec(), GenerationSettings())
    prompt_batches = batches(prompts, 2, "cpu")
    torch.manual_seed(0)
    dynamic = greedy_outputs(loaded.module, prompt_batches, prompts, 6)
    module = apply_technique(loaded.module, parse_technique("static-cache"), ctx)
    assert module.generation_config.cache_implementation == "static"
    assert greedy_outputs(module, prompt_batches, prompts, 6) == dynamic
    assert ctx.extra_result["kv_cache"] == {"implementation": "static"}

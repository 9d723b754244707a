"""Training, without a session: settings, profile keys, post-training variants, the energy of
training windows, break-even and its interval, the live label and the report's note."""

from __future__ import annotations

import dataclasses
import math

import pytest
from energy_console.core.analysis.compare import break_even, training_comparisons
from energy_console.core.analysis.report import report_notes
from energy_console.core.compression import parse_technique, untrained_variant
from energy_console.core.measure.carbon import CarbonIntensity
from energy_console.core.measure.energy import run_figures
from energy_console.core.measure.sensors.base import SensorInfo
from energy_console.core.session.profile_check import parse_profile
from energy_console.core.spec.profile import ProfileError
from energy_console.core.spec.workloads import TrainingSettings, training_settings
from energy_console.core.store.events import PhaseChanged
from energy_console.core.store.figures import TrainingTimings, WindowEnergy
from energy_console.core.store.records import RunRecord
from energy_console.core.store.session_model import _phase_label

DATASET = "dataset: ../data/sentiment-mini.csv"


def test_training_settings_default_to_adamw_and_name_a_bad_key_and_the_fix():
    assert training_settings(None) == TrainingSettings()
    assert training_settings({"optimizer": "sgd", "lr": 0.01}).optimizer == "sgd"
    with pytest.raises(ValueError, match="optimizer: 'lamb' is not allowed; expected one of"):
        training_settings({"optimizer": "lamb"})
    with pytest.raises(ValueError, match="unknown key"):
        training_settings({"learning_rate": 0.1})
    with pytest.raises(ValueError, match="lr: 0 is not allowed"):
        training_settings({"lr": 0})


def test_a_train_model_entry_needs_a_dataset_and_round_trips_its_training():
    with pytest.raises(ProfileError, match="train runs learn from labelled data; add `dataset:`"):
        parse_profile("name: t\nmodels:\n  - demo: demo/tiny-bert-random\n    workload: train\n")
    text = (f"name: t\nsave_models: true\nmlflow: true\nmodels:\n  - demo: demo/tiny-bert-random"
            f"\n    workload: train\n    {DATASET}\n    training: {{lr: 0.002, amp: false}}\n")
    profile = parse_profile(text)
    assert profile.save_models and profile.mlflow
    assert profile.models[0].training == TrainingSettings(lr=0.002, amp=False)
    again = parse_profile(profile.to_yaml())
    assert again.models[0].training == profile.models[0].training and again.save_models
    with pytest.raises(ProfileError, match="save_models: 'yes' is not allowed; expected true"):
        parse_profile("name: t\nsave_models: 'yes'\nmodels: [demo/tiny-bert-random]\n")


@pytest.mark.parametrize(("technique", "untrained"), [
    ({"chain": [{"magnitude-prune": {"amount": 0.5}}, {"finetune": {"steps": 5}}]},
     "magnitude-prune-amount0.5"),
    ({"chain": [{"structured-prune": {"ratio": 0.3}}, "finetune", "dynamic-int8"]},
     "structured-prune-ratio0.3+dynamic-int8"),
    ({"qat": {"steps": 5}}, "static-int8"),
    ("finetune", "baseline"),
])
def test_a_technique_that_trains_is_compared_with_itself_without_training(technique, untrained):
    assert untrained_variant(parse_technique(technique)).slug == untrained


def test_a_technique_without_training_has_no_untrained_variant():
    assert untrained_variant(parse_technique("dynamic-int8")) is None


CPU = SensorInfo(name="cpu", kind="cpu", measured=True, method="counter")


def window(joules: float, seconds: float = 1.0) -> WindowEnergy:
    return WindowEnergy(duration_s=seconds, energy_j={"cpu": joules})


def test_training_windows_are_charged_to_the_fine_tune_and_not_to_inference():
    timings = TrainingTimings(windows=2, steps=(4, 4), samples=(32, 32), total_steps=8,
                              loss_start=0.7, loss_end=0.4, in_compression=True)
    figures = run_figures(
        windows=[window(8.0), window(12.0), window(1.0), window(1.2)], iterations=[10, 10],
        batch_size=1, sensors=[CPU], idle_power_w={}, latencies_ms=[[1.0] * 10] * 2,
        max_spread=1.0, intensity=CarbonIntensity(400.0, "test"), training=timings)
    assert figures.energy_j_per_inference == pytest.approx(0.11)  # the inference windows only
    training = figures.training
    assert training.energy_j_per_step == pytest.approx(2.5)  # median of 2 and 3 J per step
    assert training.energy_j_per_step_ci95 == pytest.approx(
        12.706 * math.sqrt(0.5) / math.sqrt(2), rel=1e-3)
    assert training.train_energy_j == pytest.approx(20.0)
    assert training.train_energy_j_ci95 == pytest.approx(training.energy_j_per_step_ci95 * 8)
    assert training.train_samples_per_s == pytest.approx(32.0)


def record(technique: str, energy: float, ci: float, **fields) -> RunRecord:
    return RunRecord(run_id=technique, model="m", technique=technique, repeats=3,
                     energy_j_per_inference=energy, energy_j_per_inference_ci95=ci,
                     quality_metric="accuracy", **fields)


def test_break_even_is_training_energy_over_the_saving_with_a_first_order_interval():
    base = record("baseline", 0.010, 0.0003, quality_value=1.0)
    tuned = record("p+finetune", 0.006, 0.0004, train_energy_j=20.0, train_energy_j_ci95=2.0,
                   quality_value=0.9, untrained_technique="p")
    even = break_even(tuned, base)
    assert even.inferences == pytest.approx(5000.0)
    saving_ci = math.hypot(0.0003, 0.0004)
    assert even.ci95 == pytest.approx(5000.0 * math.hypot(0.1, saving_ci / 0.004))
    assert not even.within_noise


def test_a_variant_that_saves_nothing_never_pays_back_and_a_noisy_saving_says_so():
    base = record("baseline", 0.010, 0.002)
    assert break_even(record("a", 0.011, 0.001, train_energy_j=5.0), base).inferences is None
    noisy = break_even(record("b", 0.009, 0.002, train_energy_j=5.0, train_energy_j_ci95=0.5),
                       base)
    assert noisy.inferences == pytest.approx(5000.0) and noisy.within_noise


def test_the_report_gives_each_trained_variant_its_break_even_and_its_gain_per_joule():
    records = [record("baseline", 0.010, 0.0003, quality_value=1.0),
               record("p", 0.006, 0.0003, quality_value=0.5),
               record("p+finetune", 0.006, 0.0004, quality_value=0.9, train_steps=12,
                      train_energy_j=20.0, train_energy_j_ci95=2.0, untrained_technique="p")]
    even, gain = training_comparisons(records)["p+finetune"]
    assert gain.quality_gain == pytest.approx(0.4) and gain.per_joule == pytest.approx(0.02)
    text = "\n".join(report_notes(records))
    assert "pays back after 5k ±" in text and "accuracy +0.4 against p, +0.02 per J" in text


def test_the_live_view_labels_training_steps_with_their_loss():
    step = PhaseChanged(run_id="r", phase="train-step", step=12, steps=45, loss=0.61234)
    assert _phase_label(step) == "training step 12 of 45 · loss 0.6123"
    window_event = PhaseChanged(run_id="r", phase="train", repeat=2, repeats=4)
    assert _phase_label(window_event) == "training window 2 of 4"


def test_preflight_checks_a_training_set_apart_like_the_evaluation_set(tmp_path):
    from energy_console.core.session.preflight import check

    profile = parse_profile(
        "name: t\ndevice: cpu\nmodels:\n  - demo: demo/tiny-bert-random\n"
        f"    {DATASET}\n    training: {{dataset: missing.csv}}\n", base_dir=str(tmp_path))
    problems = [p for p in check(profile, "cpu") if p.subject.endswith("training.dataset")]
    assert problems and "missing.csv" in str(problems[0])


async def test_the_trade_offs_view_gives_the_break_even_of_a_variant_that_trained(tmp_path):
    from energy_console.core.store.session_dir import SessionWriter
    from energy_console.tui.app import EnergyConsoleApp
    from energy_console.tui.screens.tradeoff import TradeOffScreen

    writer = SessionWriter(tmp_path / "s")
    for r in (record("baseline", 0.010, 0.0003, quality_value=1.0),
              record("p", 0.006, 0.0003, quality_value=0.5),
              record("p+finetune", 0.006, 0.0004, quality_value=0.9, train_steps=12,
                     train_energy_j=20.0, train_energy_j_ci95=2.0, untrained_technique="p")):
        writer.record_run(dataclasses.replace(r, run_id=f"m__{r.technique}", seq_len=8,
                                              task="text-classification", device="cpu"))
    writer.close()
    session = tmp_path / "s"
    app = EnergyConsoleApp(attach=session, results_root=tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await app.push_screen(TradeOffScreen(session))
        await pilot.pause()
        texts = [str(s.render()) for s in app.screen.query(".findings")]
        assert any("pays back after 5k ±" in t and "p+finetune" in t for t in texts)

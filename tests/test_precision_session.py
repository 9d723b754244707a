"""Measuring until the figure is good enough (protocol.target_ci_pct, protocol.max_run_s): real
sessions on RAPL counters that another process advances at a known power, steady or wandering.

The model keeps a fixed pace (tests/fakes/paced_model.py): on this loaded machine a real model's
latency wanders by tens of per cent between windows, and energy per inference with it."""

from __future__ import annotations

import json

import pytest
from energy_console.core.session.profile_check import load_profile
from energy_console.core.session.runner import Runner
from energy_console.core.store.session_dir import read_runs

from tests.fakes.paced_model import save_paced_model
from tests.fakes.powercap import advancing_counters, build_powercap_tree
from tests.session_helpers import write_profile

pytestmark = pytest.mark.session

PACKAGE_W, DRAM_W = 45.0, 6.0
PACE_MS = 100.0


def measure(tmp_path, protocol: str, jitter: float = 0.0):
    tree = build_powercap_tree(tmp_path / "powercap", sockets=1, max_energy_range_uj=30_000_000)
    model = save_paced_model(tmp_path / "paced", PACE_MS)
    profile = load_profile(write_profile(tmp_path, f"""\
models: [{{path: {model}, task: text-classification, trust_remote_code: true}}]
techniques: [baseline]
inputs: {{batch_sizes: [1], sequence_lengths: [16]}}
""", protocol=protocol))
    zones = {tree.zone("intel-rapl:0"): PACKAGE_W, tree.zone("intel-rapl:0:1"): DRAM_W}
    with pytest.MonkeyPatch.context() as patch, advancing_counters(zones, 30_000_000,
                                                                   jitter=jitter):
        patch.setenv("ENERGY_CONSOLE_POWERCAP_ROOT", str(tree.root))
        patch.setenv("HF_MODULES_CACHE", str(tmp_path / "modules"))
        session = Runner(profile, tmp_path / "session").run()
    (record,) = read_runs(session.path)
    result = json.loads((session.path / "runs" / record.run_id / "result.json").read_text())
    return record, result


def test_a_run_at_steady_power_converges_and_its_interval_holds_the_true_value(tmp_path):
    # windows of 1 s: the fake's writer, delayed by a loaded machine, lags by up to tens of ms
    record, result = measure(tmp_path, """\
protocol: {idle_seconds: 0.3, warmup: 1, min_window_s: 1.0, repeats: 3, sample_hz: 20,
           threads: 1, target_ci_pct: 2, max_run_s: 30}
""")
    assert record.status == "finished"
    assert record.precision == "converged"
    assert record.energy_j_per_inference_ci95 <= 0.02 * record.energy_j_per_inference
    assert record.latency_ms_p50_ci95 <= 0.02 * record.latency_ms_p50
    # the interval is the budget's parts combined; result.json keeps them
    parts = result["uncertainty"]
    combined = (parts["spread_pct"] ** 2 + parts["counter_pct"] ** 2 + parts["edges_pct"] ** 2
                + parts["integration_pct"] ** 2) ** 0.5
    assert record.energy_j_per_inference_ci95 == pytest.approx(
        record.energy_j_per_inference * combined / 100, rel=1e-4)
    assert record.energy_uncertainty.startswith("±")
    # each window's energy per inference is the known power × its seconds per inference
    for window in result["repeats"]:
        true_j = (PACKAGE_W + DRAM_W) * window["duration_s"] / window["inferences"]
        assert window["energy_j_per_inference"] == pytest.approx(true_j, rel=0.02)
    true_j = (PACKAGE_W + DRAM_W) / record.throughput_per_s
    low = record.energy_j_per_inference - record.energy_j_per_inference_ci95
    high = record.energy_j_per_inference + record.energy_j_per_inference_ci95
    assert low <= true_j * 1.01 and true_j * 0.99 <= high


def test_a_run_whose_power_wanders_spends_its_budget_and_says_so(tmp_path):
    record, _ = measure(tmp_path, """\
protocol: {idle_seconds: 0.3, warmup: 1, min_window_s: 0.5, repeats: 3, sample_hz: 20,
           threads: 1, target_ci_pct: 2, max_run_s: 4}
""", jitter=0.3)
    assert record.status == "finished"
    assert record.precision == "budget"
    assert record.energy_j_per_inference_ci95 > 0.02 * record.energy_j_per_inference
    assert record.repeats >= 3
    assert any("protocol.max_run_s (4 s) was spent" in w for w in record.warnings)

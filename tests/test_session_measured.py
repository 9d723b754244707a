"""A real session measuring RAPL counters that another process advances at a known power."""

from __future__ import annotations

import csv
import json

import pytest
from energy_console.core.session.profile_check import load_profile
from energy_console.core.session.runner import Runner

from tests.fakes.powercap import advancing_counters, build_powercap_tree
from tests.session_helpers import write_profile

# real runner sessions: the slow tier (pytest -m "not session" skips them)
pytestmark = pytest.mark.session

PACKAGE_W, DRAM_W = 45.0, 6.0
# The fake counters are written by a process that a loaded machine can delay by tens of ms; 2 s
# windows keep that scheduling lag (not the method) well inside the 2 % the test allows. One torch
# thread: the counters set the power, and a second thread would only spin beside the first.
WINDOWS_2S = """\
protocol: {idle_seconds: 1, warmup: 1, min_window_s: 2.0, repeats: 3, sample_hz: 20, threads: 1}
"""


@pytest.fixture(scope="module")
def measured_session(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("measured")
    tree = build_powercap_tree(tmp_path / "powercap", sockets=1, max_energy_range_uj=30_000_000)
    profile = load_profile(write_profile(tmp_path, """\
models: [demo/tiny-bert-random]
techniques: [baseline]
inputs: {batch_sizes: [1], sequence_lengths: [16]}
""", protocol=WINDOWS_2S))
    zones = {tree.zone("intel-rapl:0"): PACKAGE_W, tree.zone("intel-rapl:0:1"): DRAM_W}
    with pytest.MonkeyPatch.context() as patch, advancing_counters(zones, 30_000_000):
        patch.setenv("ENERGY_CONSOLE_POWERCAP_ROOT", str(tree.root))
        return Runner(profile, tmp_path / "session").run()


def test_the_session_reports_the_power_the_counters_advance_at(measured_session):
    path = measured_session.path
    with (path / "runs.csv").open() as f:
        (row,) = csv.DictReader(f)
    assert row["status"] == "finished"
    assert row["energy_source"] == "measured"
    assert row["sensors"] == "rapl:dram-0;rapl:package-0"
    assert float(row["avg_power_w"]) == pytest.approx(PACKAGE_W + DRAM_W, rel=0.02)
    result = json.loads((path / "runs" / row["run_id"] / "result.json").read_text())
    per_sensor = result["per_sensor"]
    assert per_sensor["rapl:package-0"]["avg_power_w"] == pytest.approx(PACKAGE_W, rel=0.02)
    assert per_sensor["rapl:dram-0"]["avg_power_w"] == pytest.approx(DRAM_W, rel=0.02)
    assert per_sensor["rapl:package-0"]["measured"] is True


def test_a_measured_cpu_counter_replaces_the_estimate(measured_session):
    info = json.loads((measured_session.path / "session.json").read_text())
    assert {s["name"] for s in info["sensors"]} == {"rapl:package-0", "rapl:dram-0"}
    idle = info["idle_power_w"]
    assert idle["rapl:package-0"] == pytest.approx(PACKAGE_W, rel=0.02)

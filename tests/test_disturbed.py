"""Disturbed windows: what the runner sees on the run's GPU at a window's edges (fake NVML at the
lowest level: its process lists and clock event reasons), and how a disturbed window ends up in
the run's figures."""

from __future__ import annotations

import os
import sys

import pytest
from energy_console.core.measure.carbon import CarbonIntensity
from energy_console.core.measure.energy import run_figures
from energy_console.core.measure.sensors.base import SensorInfo
from energy_console.core.session.worker_follow import gpu_disturbances
from energy_console.core.store.figures import WindowEnergy

from tests.fakes import pynvml as fake_nvml
from tests.fakes.pynvml import NVML_ERROR_LIBRARY_NOT_FOUND, FakeGpu

GPU0 = SensorInfo("nvml:0", "gpu", True, "counter", update_period_s=0.1, device_index=0)
IDLE = 0x1  # gpu_idle: not a slowdown
SW_THERMAL, SW_POWER_CAP = 0x20, 0x4


@pytest.fixture
def nvml(monkeypatch):
    def configure(**gpu) -> None:
        fake_nvml.configure(gpus=[FakeGpu(**gpu)])
        monkeypatch.setitem(sys.modules, "pynvml", fake_nvml)

    return configure


def test_another_process_on_the_runs_gpu_disturbs_its_window(nvml):
    nvml(compute_processes=[(os.getpid(), 900), (4242, 300)], graphics_processes=[(4343, 10)])
    assert gpu_disturbances(0, os.getpid()) == ["another process on GPU 0 (pid 4242, 4343)"]


def test_the_workers_own_context_does_not(nvml):
    nvml(compute_processes=[(os.getpid(), 900)], throttle_mask=IDLE)
    assert gpu_disturbances(0, os.getpid()) == []


def test_a_throttle_reason_that_slows_the_gpu_disturbs_its_window(nvml):
    nvml(throttle_mask=IDLE | SW_THERMAL | SW_POWER_CAP)
    assert gpu_disturbances(0, os.getpid()) == [
        "GPU 0 throttled (power cap, thermal (software))"]


def test_a_run_without_a_gpu_or_without_nvml_is_not_looked_at(monkeypatch):
    assert gpu_disturbances(None, os.getpid()) == []
    fake_nvml.configure(init_error=NVML_ERROR_LIBRARY_NOT_FOUND)
    monkeypatch.setitem(sys.modules, "pynvml", fake_nvml)
    assert gpu_disturbances(0, os.getpid()) == []


@pytest.mark.parametrize("gpu", [{"compute_processes": [(4242, 300)]},
                                 {"throttle_mask": SW_THERMAL}])
def test_a_run_that_stays_disturbed_is_marked_with_the_cause(nvml, gpu):
    nvml(**gpu)
    cause = "; ".join(gpu_disturbances(0, os.getpid()))
    windows = [WindowEnergy(duration_s=1.0, energy_j={"nvml:0": 100.0 + i}, disturbed=cause)
               for i in range(3)]
    figures = run_figures(windows=windows, iterations=[10] * 3, batch_size=1, sensors=[GPU0],
                          idle_power_w={}, latencies_ms=[[1.0]] * 3, max_spread=0.15,
                          intensity=CarbonIntensity(400.0, "profile"))
    assert figures.disturbed == f"{cause} (3 of 3 windows)"
    assert figures.columns()["disturbed"] == figures.disturbed


def test_the_report_names_disturbed_and_budget_limited_runs():
    from energy_console.core.analysis.report import report_notes
    from energy_console.core.store.records import RunRecord
    from energy_console.tui.runs import live_cells

    common = {"model": "demo/tiny-bert-random", "technique": "baseline", "status": "finished",
              "energy_j_per_inference": 2.0, "energy_j_per_inference_ci95": 0.3, "repeats": 40}
    stayed = RunRecord(run_id="a", disturbed="GPU 0 throttled (thermal (software)) (3 of 3 "
                       "windows)", **common)
    spent = RunRecord(run_id="b", precision="budget", **common)
    notes = "\n".join(report_notes([stayed, spent]))
    assert "a: GPU 0 throttled (thermal (software)) (3 of 3 windows)" in notes
    assert "b: 2 ±0.3 J/inference after 40 windows" in notes
    assert "disturbed" in str(live_cells(stayed, None)["status"])
    assert "budget" in str(live_cells(spent, None)["status"])


def test_the_json_findings_name_the_same_disturbed_and_budget_limited_runs_as_the_report():
    from energy_console.core.analysis.export import findings_data
    from energy_console.core.analysis.report import report_notes
    from energy_console.core.store.records import RunRecord

    common = {"model": "demo/tiny-bert-random", "technique": "baseline", "status": "finished",
              "energy_j_per_inference": 2.0, "energy_j_per_inference_ci95": 0.3, "repeats": 40}
    stayed = RunRecord(run_id="a", disturbed="another process on GPU 0 (2 of 3 windows)",
                       **common)
    spent = RunRecord(run_id="b", precision="budget", **common)
    clean = RunRecord(run_id="c", precision="converged", **common)
    data = findings_data([stayed, spent, clean], {})
    notes = "\n".join(report_notes([stayed, spent, clean]))
    assert data["stayed_disturbed"] == {"a": stayed.disturbed}
    assert f"a: {stayed.disturbed}" in notes
    assert data["budget_limited"] == {
        "b": {"energy_j_per_inference": 2.0, "ci95": 0.3, "windows": 40}}
    assert "b: 2 ±0.3 J/inference after 40 windows" in notes and "c:" not in notes

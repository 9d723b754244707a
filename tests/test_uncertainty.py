"""The uncertainty budget of energy per inference: a known answer for each part and for their
combination (core.measure.uncertainty)."""

from __future__ import annotations

import dataclasses
import math

import pytest
from energy_console.core.measure.sensors.base import SensorInfo
from energy_console.core.measure.sensors.estimate import MODEL_ERROR_PCT
from energy_console.core.measure.uncertainty import energy_uncertainty
from energy_console.core.store.figures import EnergyUncertainty, WindowEnergy

# a bound b on each of n windows: 95 % half-width of their mean, per unit of b
PER_3_WINDOWS = 1.96 / math.sqrt(3) / math.sqrt(3)

RAPL = SensorInfo("rapl:package-0", "cpu", True, "counter", quantum_j=1e-6)
NVML = SensorInfo("nvml:0", "gpu", True, "counter", update_period_s=0.1, quantum_j=1e-3)
POLLED = SensorInfo("nvml:1", "gpu", True, "polled-power", update_period_s=1.0)
ESTIMATE = SensorInfo("cpu-estimate", "cpu", False, "estimate", model_error_pct=MODEL_ERROR_PCT)


def steady(sensor_j: dict[str, float], duration_s: float = 2.0, n: int = 3):
    """n identical windows: no spread, so each part shows alone."""
    windows = [WindowEnergy(duration_s=duration_s, energy_j=dict(sensor_j)) for _ in range(n)]
    return windows, [sum(sensor_j.values()) / 100] * n


def test_spread_is_the_student_t_interval_of_the_windows():
    windows = [WindowEnergy(duration_s=2.0, energy_j={"rapl:package-0": e})
               for e in (10.0, 11.0, 12.0)]
    budget = energy_uncertainty(windows, [0.10, 0.11, 0.12], [RAPL])
    assert budget.spread_pct == pytest.approx(4.303 * 0.01 / math.sqrt(3) / 0.11 * 100, rel=1e-3)


def test_the_counter_part_is_one_step_over_the_windows_energy():
    windows, per_inference = steady({"nvml:0": 2.0})  # 2 J a window, NVML steps 1 mJ
    budget = energy_uncertainty(windows, per_inference,
                                [dataclasses.replace(NVML, update_period_s=None)])
    assert budget.counter_pct == pytest.approx(0.05 * PER_3_WINDOWS)  # 1 mJ of 2 J


def test_the_edges_part_is_one_update_period_over_the_window():
    windows, per_inference = steady({"nvml:0": 200.0}, duration_s=2.0)
    budget = energy_uncertainty(windows, per_inference, [NVML])
    assert budget.edges_pct == pytest.approx(5.0 * PER_3_WINDOWS)  # 100 ms of 2 s


def test_each_sensor_counts_by_its_share_of_the_energy():
    windows, per_inference = steady({"nvml:0": 150.0, "rapl:package-0": 50.0})
    budget = energy_uncertainty(windows, per_inference, [NVML, RAPL])
    # RAPL's period is not stated here: NVML's 5 % bound on its 75 % share
    assert budget.edges_pct == pytest.approx(0.75 * 5.0 * PER_3_WINDOWS)


def test_a_power_only_sensor_is_off_by_a_sampling_period_of_its_integration():
    windows, per_inference = steady({"nvml:1": 100.0}, duration_s=4.0)
    budget = energy_uncertainty(windows, per_inference, [POLLED], sample_period_s=0.05)
    assert budget.integration_pct == pytest.approx(0.05 / 4.0 * 100 * PER_3_WINDOWS)
    assert budget.edges_pct == pytest.approx(1.0 / 4.0 * 100 * PER_3_WINDOWS)  # 1 s average
    assert budget.counter_pct == 0.0


def test_a_drivers_power_samples_are_off_by_the_drivers_sampling_interval():
    samples = SensorInfo("nvml:1", "gpu", True, "power-samples", update_period_s=0.02)
    windows, per_inference = steady({"nvml:1": 100.0}, duration_s=4.0)
    budget = energy_uncertainty(windows, per_inference, [samples], sample_period_s=0.25)
    assert budget.integration_pct == pytest.approx(0.02 / 4.0 * 100 * PER_3_WINDOWS)


def test_the_estimate_is_a_counter_off_by_its_step_not_by_the_sampling_period():
    windows, per_inference = steady({"cpu-estimate": 15.0}, duration_s=1.0)
    estimate = dataclasses.replace(ESTIMATE, quantum_j=0.075)  # 15 W of range, 2 CPUs, 10 ms
    budget = energy_uncertainty(windows, per_inference, [estimate], sample_period_s=0.05)
    assert budget.integration_pct == 0.0
    assert budget.counter_pct == pytest.approx(0.5 * PER_3_WINDOWS)  # 75 mJ of 15 J


def test_the_idle_part_is_the_baselines_error_as_a_share_of_dynamic_energy():
    # 60 J over 2 s at 20 W idle: 40 J idle, 20 J dynamic; a 0.1 s period over 2 s of idle
    windows, per_inference = steady({"nvml:0": 60.0}, duration_s=2.0)
    budget = energy_uncertainty(windows, per_inference, [NVML], idle_power_w=20.0, idle_s=2.0)
    # one baseline for every window: not averaged down
    assert budget.idle_pct == pytest.approx(40.0 * (0.1 / 2.0) / 20.0 * 100 * 1.96 / math.sqrt(3))


def test_an_estimate_states_its_model_error_by_its_share():
    windows, per_inference = steady({"cpu-estimate": 30.0, "nvml:0": 90.0})
    budget = energy_uncertainty(windows, per_inference, [ESTIMATE, NVML])
    assert budget.model_pct == pytest.approx(0.25 * MODEL_ERROR_PCT)


def test_the_parts_combine_as_a_root_sum_of_squares_idle_and_model_beside():
    budget = EnergyUncertainty(spread_pct=2.9, counter_pct=0.8, edges_pct=0.6,
                               integration_pct=0.0, idle_pct=0.4, model_pct=7.5)
    assert budget.combined_pct == pytest.approx(math.sqrt(2.9**2 + 0.8**2 + 0.6**2))
    assert budget.text() == ("±3.1 % = spread 2.9, counter 0.8, edges 0.6; idle 0.4 (dynamic "
                             "energy), model 7.5 (stated, not combined)")


def test_one_window_has_no_interval():
    windows, per_inference = steady({"nvml:0": 200.0}, n=1)
    budget = energy_uncertainty(windows, per_inference, [NVML])
    assert budget.combined_pct is None and budget.text() == ""


def test_the_report_gives_each_runs_interval_in_parts():
    from energy_console.core.analysis.report import report_notes
    from energy_console.core.store.records import RunRecord

    record = RunRecord(run_id="r", status="finished", energy_uncertainty="±3.1 % = spread 2.9, "
                       "counter 0.8, edges 0.6")
    assert "  r: ±3.1 % = spread 2.9, counter 0.8, edges 0.6" in report_notes([record])

"""Energy figures from timed windows, with known answers: core/energy.py is pure."""

from __future__ import annotations

import math
import statistics

import pytest
from energy_console.core.measure.carbon import CarbonIntensity
from energy_console.core.measure.energy import (
    NoEnergyWindows,
    nvml_index,
    run_figures,
)
from energy_console.core.measure.sampler import Sampler
from energy_console.core.measure.sensors import rapl
from energy_console.core.measure.sensors.base import Reading, SensorInfo
from energy_console.core.store.figures import WindowEnergy

from tests.fakes.powercap import build_powercap_tree

CPU = SensorInfo("rapl:package-0", "cpu", True, "counter", update_period_s=0.001)
DRAM = SensorInfo("rapl:dram-0", "dram", True, "counter", update_period_s=0.001)
GPU0 = SensorInfo("nvml:0", "gpu", True, "counter", update_period_s=0.1, device_index=0)
ESTIMATE = SensorInfo("cpu-estimate", "cpu", False, "estimate")
GRID = CarbonIntensity(500.0, "profile")


def figures(windows, iterations=(100, 100, 100), batch_size=2, sensors=(CPU, DRAM),
            idle=None, latencies=((1.0, 2.0, 3.0),), max_spread=0.15):
    return run_figures(windows=windows, iterations=iterations, batch_size=batch_size,
                       sensors=sensors, idle_power_w=idle or {}, latencies_ms=latencies,
                       max_spread=max_spread, intensity=GRID)


def window(cpu_j, dram_j=0.0, duration_s=2.0, **extra):
    return WindowEnergy(duration_s=duration_s,
                        energy_j={"rapl:package-0": cpu_j, "rapl:dram-0": dram_j}, **extra)


def test_constant_power_gives_energy_per_inference_power_and_throughput():
    # 40 W + 5 W over 2 s windows, 100 iterations of batch 2 each: 90 J / 200 inferences
    result = figures([window(80.0, 10.0)] * 3)
    assert result.energy_j_per_inference == pytest.approx(0.45)
    assert result.avg_power_w == pytest.approx(45.0)
    assert result.throughput_per_s == pytest.approx(100.0)
    # no spread: what is left is the counters' update period (1 ms) over each 2 s window, a
    # uniform bound on each of 3 windows (core.measure.uncertainty)
    assert result.energy_j_per_inference_ci95 == pytest.approx(
        0.45 * 0.001 / 2.0 * 1.96 / math.sqrt(3) / math.sqrt(3))
    assert result.per_sensor["rapl:dram-0"].energy_j_per_inference == pytest.approx(0.05)
    assert result.energy_source == "measured" and result.energy_fault == ""
    assert result.co2e_g_per_1k_inferences == pytest.approx(450.0 / 3.6e6 * 500.0)


def test_idle_power_is_subtracted_for_the_dynamic_energy():
    result = figures([window(80.0, 10.0)] * 3, idle={"rapl:package-0": 10.0, "rapl:dram-0": 2.5})
    assert result.idle_power_w == pytest.approx(12.5)
    assert result.dynamic_energy_j_per_inference == pytest.approx((90.0 - 25.0) / 200)


def test_the_interval_is_students_t_over_the_repeats():
    result = figures([window(60.0), window(80.0), window(100.0)])
    per_inference = [0.3, 0.4, 0.5]
    expected = 4.303 * statistics.stdev(per_inference) / math.sqrt(3)
    assert result.energy_j_per_inference == pytest.approx(0.4)
    assert result.energy_j_per_inference_ci95 == pytest.approx(expected)
    assert any("repeats disagree by 50%" in w for w in result.warnings)


def test_a_window_across_a_counter_wrap_through_the_real_sensor_and_sampler(tmp_path,
                                                                             monkeypatch):
    """30 W for 2 s on a RAPL counter that wraps at 50 J: the window still holds 60 J."""
    tree = build_powercap_tree(tmp_path, sockets=1, dram=False, core=False,
                               max_energy_range_uj=50_000_000, start_uj=40_000_000)
    monkeypatch.setenv(rapl.POWERCAP_ROOT_ENV, str(tmp_path))
    (sensor,) = rapl.probe()[0]
    clock = {"t": 100.0}
    read = sensor.read
    monkeypatch.setattr(sensor, "read", lambda: Reading(clock["t"], read().energy_j, None))
    sampler = Sampler([sensor], sample_hz=20)
    counter_uj = 40_000_000
    for _ in range(21):  # 0.1 s steps: 3 J each, wrapping after the fourth
        sampler.read_now()
        counter_uj = (counter_uj + 3_000_000) % 50_000_000
        tree.set_energy_uj("intel-rapl:0", counter_uj)
        clock["t"] += 0.1
    energy = sampler.window(sampler.energy_at(100.0), 100.0, 102.0)
    measured = WindowEnergy(2.0, {n: e.energy_j for n, e in energy.items()})
    result = figures([measured], iterations=(30,), batch_size=1, sensors=(CPU,))
    assert result.energy_j_per_inference == pytest.approx(60.0 / 30)
    assert result.avg_power_w == pytest.approx(30.0)


def test_a_sensor_that_failed_in_a_window_makes_the_figure_faulty():
    result = figures([window(80.0, 10.0), window(80.0, 10.0, faults={"rapl:dram-0": "OSError"}),
                      window(80.0, 10.0)])
    assert result.energy_source == "faulty"
    assert result.energy_fault == "rapl:dram-0 failed during a window (OSError)"


def test_a_measured_counter_that_stood_still_makes_the_figure_faulty():
    result = figures([window(80.0, 0.0)] * 3)
    assert result.energy_source == "faulty"
    assert "rapl:dram-0 did not move over a 2 s window" in result.energy_fault


def test_a_still_counter_in_a_window_too_short_for_it_to_move_is_not_a_fault():
    short = WindowEnergy(0.05, {"nvml:0": 0.0, "rapl:package-0": 2.0})
    result = figures([short], iterations=(10,), sensors=(CPU, GPU0))
    assert result.energy_fault == ""
    assert any("shorter than 10 update periods of nvml:0" in w for w in result.warnings)


def test_an_estimate_labels_the_figure_estimated_and_a_mix_mixed():
    windows = [WindowEnergy(2.0, {"cpu-estimate": 40.0, "nvml:0": 300.0})]
    assert figures(windows, (10,), sensors=(ESTIMATE,)).energy_source == "estimated"
    assert figures(windows, (10,), sensors=(ESTIMATE, GPU0)).energy_source == "mixed"


def test_energy_of_sensors_not_charged_to_the_run_is_ignored():
    windows = [WindowEnergy(2.0, {"rapl:package-0": 80.0, "nvml:1": 500.0})]
    result = figures(windows, (100,), sensors=(CPU,))
    assert result.sensors == ("rapl:package-0",)
    assert result.energy_j_per_inference == pytest.approx(0.4)


def test_no_windows_is_an_error_not_zero_joules():
    with pytest.raises(NoEnergyWindows):
        figures([], iterations=(100,))


def test_cuda_visible_devices_maps_torch_indexes_to_nvml_indexes():
    assert nvml_index("cuda:0", "2,3") == 2
    assert nvml_index("cuda:1", "2,3") == 3
    assert nvml_index("cuda", "") == 0
    assert nvml_index("cpu", "1") is None


def test_a_disturbed_window_is_left_out_of_the_figures_and_counted():
    measured = figures([window(10.0), window(99.0, disturbed="sampler gap: no readings"),
                        window(12.0)], iterations=(10, 10, 10), batch_size=1)
    assert measured.energy_j_per_inference == pytest.approx(1.1)
    assert len(measured.per_repeat) == 2
    assert measured.windows_dropped == 1 and measured.disturbed == ""


def test_a_run_whose_every_window_was_disturbed_keeps_them_and_names_the_cause():
    measured = figures([window(10.0, disturbed="GPU 0 throttled (thermal)"),
                        window(12.0, disturbed="GPU 0 throttled (thermal)")], iterations=(10, 10))
    assert measured.windows_dropped == 0
    assert measured.disturbed == "GPU 0 throttled (thermal) (2 of 2 windows)"

"""The utilisation-based CPU estimate, with the CPU count, the clock and /proc/uptime injected."""

from __future__ import annotations

import psutil
import pytest
from energy_console.core.measure.sensors import detect, estimate
from energy_console.core.measure.sensors.estimate import IDLE_FRACTION, EstimatedCpuSensor

from tests.fakes.clock import ManualClock


class FakeUptime:
    """A /proc/uptime file: "uptime_s idle_s", idle_s summed over CPUs, as the kernel writes it."""

    def __init__(self, path, clock: ManualClock, cpus: int):
        self.path, self.clock, self.cpus = path, clock, cpus
        self.idle_s = 5000.0
        self._write()

    def _write(self) -> None:
        self.path.write_text(f"{self.clock.t:.2f} {self.idle_s:.2f}\n")

    def run(self, seconds: float, busy_cpus: float) -> None:
        """`seconds` pass with `busy_cpus` of the CPUs busy and the rest idle."""
        self.clock.advance(seconds)
        self.idle_s += (self.cpus - busy_cpus) * seconds
        self._write()


@pytest.fixture
def machine(tmp_path, monkeypatch):
    """Four CPUs behind a fake /proc/uptime and a manual clock."""
    clock = ManualClock()
    uptime = FakeUptime(tmp_path / "uptime", clock, cpus=4)
    monkeypatch.setattr(estimate, "PROC_UPTIME", str(uptime.path))
    return uptime


def test_the_estimate_is_labelled_as_such_and_uses_the_profiles_tdp():
    sensor = EstimatedCpuSensor(tdp_w=80)
    assert sensor.measured is False and sensor.method == "estimate"
    assert sensor.idle_w == pytest.approx(80 * IDLE_FRACTION)
    assert "TDP from profile" in sensor.detail


@pytest.mark.parametrize(("busy_cpus", "watts"), [(0, 25.0), (1, 43.75), (3, 81.25), (4, 100.0)])
def test_power_is_linear_in_the_busy_fraction_of_all_cpus(machine, busy_cpus, watts):
    sensor = EstimatedCpuSensor(tdp_w=100, cpus=4, clock=machine.clock)

    machine.run(1.0, busy_cpus=busy_cpus)
    reading = sensor.read()

    assert reading.t == machine.clock.t
    assert reading.power_w == pytest.approx(watts)  # 25 W idle + 75 W x busy fraction
    assert reading.energy_j == pytest.approx(watts * 1.0)  # that power over the second


def test_its_energy_is_a_counter_exact_whatever_the_spacing_of_its_reads(machine):
    """Linear in the CPU-time counters: read rarely or often, the energy is the same (the
    sampler reads it at the display rate, as it reads counters)."""
    often = EstimatedCpuSensor(tdp_w=100, cpus=4, clock=machine.clock)
    rarely = EstimatedCpuSensor(tdp_w=100, cpus=4, clock=machine.clock)

    for busy_cpus in (4, 0, 2, 1, 3):
        machine.run(0.25, busy_cpus=busy_cpus)
        often.read()

    # 0.25 s each at 100, 25, 62.5, 43.75, 81.25 W
    assert rarely.read().energy_j == pytest.approx(78.125)
    assert often.read().energy_j == pytest.approx(78.125)
    assert often.quantum_j == pytest.approx(75.0 * 0.01 / 4)  # one 10 ms step of idle time


def test_each_reading_covers_only_the_time_since_the_previous_one(machine):
    sensor = EstimatedCpuSensor(tdp_w=100, cpus=4, clock=machine.clock)

    machine.run(2.0, busy_cpus=4)
    assert sensor.read().power_w == pytest.approx(100.0)
    machine.run(0.05, busy_cpus=0)
    assert sensor.read().power_w == pytest.approx(25.0)
    machine.run(0.05, busy_cpus=2)
    assert sensor.read().power_w == pytest.approx(62.5)


def test_the_estimate_stays_within_idle_and_tdp_when_the_counts_disagree(machine):
    sensor = EstimatedCpuSensor(tdp_w=100, cpus=4, clock=machine.clock)

    machine.run(1.0, busy_cpus=-2)  # more idle time than CPUs x time (a CPU came online)
    assert sensor.read().power_w == pytest.approx(25.0)
    machine.run(1.0, busy_cpus=6)  # less idle time than no idle time
    assert sensor.read().power_w == pytest.approx(100.0)
    assert sensor.read().power_w == pytest.approx(25.0)  # no time passed: nothing was busy


def test_without_proc_uptime_the_estimate_uses_psutils_cpu_times(tmp_path, monkeypatch):
    clock = ManualClock()
    times = {"idle": 100.0, "total": 400.0}
    monkeypatch.setattr(estimate, "PROC_UPTIME", str(tmp_path / "no-such-file"))
    monkeypatch.setattr(estimate, "psutil_idle_and_total_s",
                        lambda: (times["idle"], times["total"]))
    sensor = EstimatedCpuSensor(tdp_w=40, clock=clock)

    clock.advance(1.0)
    times["idle"] += 1.0  # 1 of 2 CPU-seconds idle
    times["total"] += 2.0
    reading = sensor.read()

    assert reading.t == clock.t
    assert reading.power_w == pytest.approx(10.0 + 30.0 * 0.5)


@pytest.mark.parametrize(("physical", "logical", "tdp_w"),
                         [(16, 32, 160.0), (None, 6, 60.0), (1, 2, 15.0)])
def test_without_a_profile_tdp_it_is_guessed_from_the_core_count(monkeypatch, physical,
                                                                 logical, tdp_w):
    counts = {True: logical, False: physical}
    monkeypatch.setattr(psutil, "cpu_count", lambda logical=True: counts[logical])

    sensor = EstimatedCpuSensor()

    assert sensor.tdp_w == pytest.approx(tdp_w)  # 10 W a core, at least 15 W
    assert "TDP guessed from core count" in sensor.detail


def test_the_real_proc_uptime_gives_a_power_within_the_model():
    """This machine's own counters, whatever its load: only the model's bounds are checked."""
    sensor = EstimatedCpuSensor(tdp_w=100)
    readings = [sensor.read() for _ in range(3)]
    assert all(25.0 <= r.power_w <= 100.0 for r in readings)
    assert [r.t for r in readings] == sorted(r.t for r in readings)


def test_without_a_cpu_counter_detect_falls_back_to_the_estimate_and_says_so(monkeypatch,
                                                                              tmp_path):
    monkeypatch.setenv("ENERGY_CONSOLE_POWERCAP_ROOT", str(tmp_path / "nothing"))
    detection = detect(cpu_tdp_w=50)
    estimates = [s for s in detection.sensors if s.method == "estimate"]
    assert len(estimates) == 1 and estimates[0].tdp_w == 50
    assert any("estimated" in notice for notice in detection.notices)
    assert {m.name for m in detection.missing} >= {"rapl", "nvml"}

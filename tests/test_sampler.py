"""The sampler turns counter and power readings into energy over windows."""

from __future__ import annotations

import math
import sys
import threading
import time

import pytest
from energy_console.core.measure.sampler import Sampler
from energy_console.core.measure.sensors import rapl
from energy_console.core.measure.sensors.base import Reading
from energy_console.core.measure.sensors.nvml import NvmlSensor

import tests.fakes.pynvml as fake_nvml
from tests.fakes.clock import ManualClock
from tests.fakes.powercap import build_powercap_tree
from tests.fakes.pynvml import FakeGpu


@pytest.fixture
def clock(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", fake_nvml)
    return ManualClock(t=500.05)


def nvml_sensor(clock, **gpu) -> tuple[NvmlSensor, FakeGpu]:
    device = FakeGpu(clock=clock, **gpu)
    fake_nvml.configure(gpus=[device])
    fake_nvml.nvmlInit()
    return NvmlSensor(0, clock=clock), device


def sample_for(sampler: Sampler, clock: ManualClock, seconds: float, period_s: float = 0.05):
    """Read every period for `seconds` of the fake clock; returns the last round's power by
    sensor."""
    for _ in range(round(seconds / period_s)):
        clock.t += period_s
        last = sampler.read_now()
    return {s.sensor: s.power_w for s in last}


def test_counter_read_faster_than_it_updates_gives_steady_power(clock):
    sensor, _ = nvml_sensor(clock, power_w=150.0)  # counter moves every 100 ms
    sampler = Sampler([sensor], sample_hz=20)
    powers = []
    for _ in range(40):
        clock.t += 0.05
        powers += [s.power_w for s in sampler.read_now() if s.power_w is not None]

    assert powers[4:] == pytest.approx([150.0] * len(powers[4:]), rel=1e-6)


def test_counter_energy_between_its_steps_is_interpolated(clock):
    sensor, _ = nvml_sensor(clock, power_w=100.0)
    sampler = Sampler([sensor], sample_hz=20)
    sampler.read_now()
    sample_for(sampler, clock, 2.0)

    # a window of 0.43 s, edges off the counter's 100 ms grid: 43 J within the observation lag
    t0 = 500.55 + 0.012
    window = sampler.window(sampler.energy_at(t0), t0, t0 + 0.43)["nvml:0"]

    assert window.energy_j == pytest.approx(43.0, abs=100.0 * 0.05)


def test_polled_power_is_integrated_by_trapezoid(clock):
    sensor, device = nvml_sensor(clock, energy_counter=False, power_w=0.0)
    sampler = Sampler([sensor], sample_hz=20)
    t0 = clock.t
    sampler.read_now()
    for _ in range(20):  # a linear ramp 0 -> 100 W over 1 s: the trapezoid is exact, 50 J
        clock.t += 0.05
        device.set_power_w(100.0 * (clock.t - t0))
        sampler.read_now()

    assert sampler.window({"nvml:0": 0.0}, t0, clock.t)["nvml:0"].energy_j == pytest.approx(50.0)


def test_memory_is_bounded_by_history(clock):
    sensor, _ = nvml_sensor(clock, energy_counter=False, power_w=10.0)
    sampler = Sampler([sensor], sample_hz=20, history_s=5)
    sample_for(sampler, clock, 60.0)

    kept = len(sampler._series["nvml:0"].t)

    assert kept <= 5 * 20 + 64
    assert sampler.energy_at(clock.t)["nvml:0"] == pytest.approx(600.0, rel=1e-3)


def test_readings_that_do_not_move_forward_in_time_are_ignored(clock):
    sensor, _ = nvml_sensor(clock, energy_counter=False, power_w=10.0)
    sampler = Sampler([sensor], sample_hz=20)

    first = sampler.read_now()
    again = sampler.read_now()  # the clock did not move

    assert len(first) == 1
    assert again == []


def test_a_failing_sensor_does_not_stop_the_others(clock, tmp_path, monkeypatch):
    tree = build_powercap_tree(tmp_path, sockets=1, dram=False)
    monkeypatch.setenv(rapl.POWERCAP_ROOT_ENV, str(tmp_path))
    (package,) = rapl.probe()[0]
    gpu, _ = nvml_sensor(clock, power_w=50.0)
    sampler = Sampler([package, gpu], sample_hz=20)

    (tree.root / "intel-rapl:0" / "energy_uj").write_bytes(b"")  # the counter reads as nothing
    clock.t += 0.2
    samples = sampler.read_now()

    assert [s.sensor for s in samples] == ["nvml:0"]
    assert sampler.failures(0, math.inf)["rapl:package-0"].startswith("ValueError")


def test_a_read_that_raises_mid_tick_fails_alone(clock):
    """A tick is one C-level pass over every read; one that raises in the middle is marked
    failed and the reads after it still happen, in the same tick."""
    devices = [FakeGpu(clock=clock, power_w=watts) for watts in (100.0, 200.0, 300.0)]
    fake_nvml.configure(gpus=devices)
    sensors = []
    for index in range(3):
        fake_nvml.nvmlInit()
        sensors.append(NvmlSensor(index, clock=clock))
    sampler = Sampler(sensors, sample_hz=20)
    sample_for(sampler, clock, 0.5)

    devices[1].energy_counter = False  # its counter reads now raise NVMLError_NotSupported
    power = sample_for(sampler, clock, 1.0)

    assert power == {"nvml:0": pytest.approx(100.0), "nvml:2": pytest.approx(300.0)}
    assert sampler.failures(0, math.inf) == {"nvml:1": "NVMLError_NotSupported: Not Supported"}


def test_the_thread_passes_samples_to_the_callback(tmp_path, monkeypatch):
    build_powercap_tree(tmp_path, sockets=1)
    monkeypatch.setenv(rapl.POWERCAP_ROOT_ENV, str(tmp_path))
    batches = []
    enough = threading.Event()

    def on_samples(samples):
        batches.append(samples)
        if len(batches) >= 3:
            enough.set()

    sampler = Sampler(rapl.probe()[0], sample_hz=50, on_samples=on_samples, deliver_every_s=0)
    sampler.start()
    enough.wait(timeout=5)
    sampler.stop()

    assert len(batches) >= 3
    assert {s.sensor for s in batches[-1]} == {"rapl:package-0", "rapl:dram-0"}


def test_samples_reach_the_callback_in_batches_in_order_and_all_by_stop(tmp_path, monkeypatch):
    build_powercap_tree(tmp_path, sockets=1)
    monkeypatch.setenv(rapl.POWERCAP_ROOT_ENV, str(tmp_path))
    batches = []
    sampler = Sampler(
        rapl.probe()[0], sample_hz=50, on_samples=batches.append, deliver_every_s=0.2
    )
    sampler.start()
    time.sleep(0.6)
    edge = sampler.read_now()  # a window edge, read from another thread, joins the same stream
    time.sleep(0.1)
    sampler.stop()

    delivered = [s for batch in batches for s in batch]
    assert len(batches) < len(delivered) / 4  # several rounds of 2 sensors per call
    assert set(edge) <= set(delivered)
    for name in ("rapl:package-0", "rapl:dram-0"):
        times = [s.t for s in delivered if s.sensor == name]
        assert times == sorted(set(times))  # in order, none twice
        assert times[-1] == sampler._series[name]._last_read_t  # none left behind at stop


def test_a_counter_that_stops_moving_reads_zero_power(clock):
    sensor, device = nvml_sensor(clock, power_w=80.0)
    sampler = Sampler([sensor], sample_hz=20)
    assert sample_for(sampler, clock, 1.0)["nvml:0"] == pytest.approx(80.0)

    device.set_power_w(0.0)
    assert sample_for(sampler, clock, 1.5)["nvml:0"] == 0.0


class PowerOnly:
    """A sensor with read() alone (no read_raw/decode split): the sampler reads it whole."""

    name, kind, measured, method, detail = "power-only", "system", True, "polled-power", ""
    update_period_s = None
    device_index = None

    def __init__(self, clock: ManualClock, power_w: float):
        self.clock_source, self.power_w = clock, power_w

    def read(self) -> Reading:
        return Reading(self.clock_source.t, None, self.power_w)

    def close(self) -> None:
        pass


def test_a_sensor_with_read_alone_is_sampled_and_integrated(clock):
    sampler = Sampler([PowerOnly(clock, power_w=40.0)], sample_hz=20)
    t0 = clock.t
    sampler.read_now()
    sample_for(sampler, clock, 1.0)

    assert sampler.energy_at(clock.t)["power-only"] - sampler.energy_at(t0)["power-only"] == (
        pytest.approx(40.0)
    )


def test_ticks_of_the_thread_are_decoded_before_any_question(tmp_path, monkeypatch):
    build_powercap_tree(tmp_path, sockets=1, dram=False)
    monkeypatch.setenv(rapl.POWERCAP_ROOT_ENV, str(tmp_path))
    batches = []
    sampler = Sampler(rapl.probe()[0], sample_hz=50, on_samples=batches.append,
                      deliver_every_s=60)  # the thread itself decodes nothing in this test
    sampler.start()
    time.sleep(0.3)
    (tmp_path / "intel-rapl:0" / "energy_uj").write_bytes(b"")  # the next reads fail to parse
    time.sleep(0.1)
    why = sampler.failures(0, math.inf)
    sampler.stop()

    assert why["rapl:package-0"].startswith("ValueError")
    assert len(batches) == 2  # start()'s first reading, then everything else at stop()
    assert len(batches[1]) >= 5  # the thread's ticks, read before the counter broke


# A sampler in a process of its own, which the test stops with SIGSTOP (as a starved or
# suspended runner would be) while a window is open; the window's failures are printed at the end.
STOPPABLE_SAMPLER = """
import json, os, sys, time
from pathlib import Path
from tests.fakes.powercap import build_powercap_tree
from energy_console.core.measure.sensors import rapl
from energy_console.core.measure.sampler import Sampler
build_powercap_tree(Path(sys.argv[1]), sockets=1)
os.environ[rapl.POWERCAP_ROOT_ENV] = sys.argv[1]
sampler = Sampler(rapl.probe()[0], sample_hz=20)
sampler.start()
t0 = time.monotonic()
print("window open", flush=True)
sys.stdin.readline()
t1 = time.monotonic()
sampler.stop()
print(json.dumps(sampler.failures(t0, t1)), flush=True)
"""


def _window_failures(tmp_path, stop_s: float) -> dict[str, str]:
    import json
    import os
    import signal
    import subprocess
    from pathlib import Path

    child = subprocess.Popen([sys.executable, "-c", STOPPABLE_SAMPLER, str(tmp_path)],
                             cwd=Path(__file__).resolve().parents[1], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "window open"
        time.sleep(0.3)
        if stop_s:
            os.kill(child.pid, signal.SIGSTOP)
            time.sleep(stop_s)
            os.kill(child.pid, signal.SIGCONT)
        time.sleep(0.3)
        out, _ = child.communicate("\n", timeout=30)
    finally:
        child.kill()
    return json.loads(out)


@pytest.mark.session  # a process of its own, stopped for seconds
def test_a_sampler_stopped_inside_a_window_fails_it_naming_the_gap(tmp_path):
    failures = _window_failures(tmp_path, stop_s=1.5)
    assert set(failures) == {"rapl:package-0", "rapl:dram-0"}  # every sensor of the window
    gap_s = float(failures["rapl:package-0"].split("no readings for ")[1].split(" s")[0])
    assert 1.4 <= gap_s <= 3.0
    assert "stopped or starved" in failures["rapl:package-0"]


@pytest.mark.session
def test_a_sampler_never_stopped_reports_no_gap(tmp_path):
    assert _window_failures(tmp_path, stop_s=0) == {}


class CountingRead:
    """A sensor that counts its reads (real time: the sampler's thread drives it)."""

    kind, measured, detail, update_period_s, device_index = "system", True, "", None, None

    def __init__(self, method: str):
        self.name, self.method, self.reads = f"counting-{method}", method, 0

    def read(self) -> Reading:
        self.reads += 1
        return Reading(time.monotonic(), float(self.reads), 10.0)

    def close(self) -> None:
        pass


def test_with_a_display_rate_counters_are_read_at_it_and_power_only_sensors_at_sample_hz():
    """...and a driver's power samples (kept by the driver, with their times) once per delivery,
    on the tick that hands the batch on."""
    counter, polled = CountingRead(method="counter"), CountingRead(method="polled-power")
    driver_samples = CountingRead(method="power-samples")
    delivered: list[int] = []
    sampler = Sampler([counter, polled, driver_samples], sample_hz=20, display_hz=4,
                      deliver_every_s=0.5,
                      on_samples=lambda batch: delivered.append(driver_samples.reads))
    sampler.start()
    time.sleep(1.0)
    sampler.stop()
    assert 14 <= polled.reads <= 23  # 20 Hz, less what a loaded machine skips
    assert 3 <= counter.reads <= 7  # 4 Hz, and the start's read
    assert 2 <= driver_samples.reads <= 4  # 2 deliveries a second, and the start's read
    # the start's read is handed on at once; each batch of the thread's holds a fresh read
    assert delivered[:3] == [1, 2, 3]
    before = [sensor.reads for sensor in (counter, polled, driver_samples)]
    sampler.read_now()  # a window's edge reads every sensor
    assert [sensor.reads for sensor in (counter, polled, driver_samples)] == [
        n + 1 for n in before]


def test_a_drivers_samples_are_fetched_every_second_though_batches_go_every_two():
    """The driver keeps ~2.4 s of samples: a fetch per 2-s delivery would come too near losing
    some, so they are fetched every DRIVER_FETCH_EVERY_S, the counters at the display rate."""
    counter, driver_samples = CountingRead(method="counter"), CountingRead(method="power-samples")
    sampler = Sampler([counter, driver_samples], sample_hz=20, display_hz=2, deliver_every_s=2.0)
    assert sampler.period_s == 0.5
    reads_by_tick = []
    for calls in sampler._cycle:  # one delivery's ticks, as the thread makes them
        before = driver_samples.reads
        for read in calls:
            read()
        reads_by_tick.append(driver_samples.reads - before)
    assert counter.reads == 4 and reads_by_tick == [0, 1, 0, 1]  # the last tick hands them on


@pytest.mark.parametrize("methods", [["counter"], ["estimate"], ["counter", "estimate"]])
def test_counters_and_the_estimate_alone_wake_the_thread_at_the_display_rate(methods):
    """The estimate is a counter of CPU time: no power-only sensor, no wake-up at sample_hz."""
    sampler = Sampler([CountingRead(method=m) for m in methods], sample_hz=20, display_hz=4)
    assert sampler.period_s == 0.25

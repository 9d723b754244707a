"""NVML sensors against a fake `pynvml` that keeps NVML's units, errors and counter steps."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import sys
import time
from pathlib import Path

import pytest
from energy_console.core.measure.sampler import Sampler
from energy_console.core.measure.sensors import nvml

import tests.fakes.pynvml as fake_nvml
from tests.fakes.clock import ManualClock
from tests.fakes.host import FAKES_DIR
from tests.fakes.pynvml import FakeGpu


@pytest.fixture
def fake(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", fake_nvml)
    fake_nvml.configure()
    return fake_nvml


def real_pynvml(monkeypatch):
    """nvidia-ml-py's own `pynvml` as `import pynvml` gives it for this test (a fresh copy:
    tests/fakes, first on sys.path here, is skipped)."""
    path = [p for p in sys.path if Path(p or ".").resolve() != FAKES_DIR]
    spec = importlib.machinery.PathFinder.find_spec("pynvml", path)
    assert spec is not None and "site-packages" in str(spec.origin), spec
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "pynvml", module)  # it looks itself up while loading
    spec.loader.exec_module(module)
    return module


def test_the_real_library_without_a_driver_gives_a_reason(monkeypatch):
    """nvidia-ml-py's own error when libnvidia-ml.so cannot be loaded (no driver): the loader
    fails here on any machine, driver or not."""
    pynvml = real_pynvml(monkeypatch)

    def no_library(name, *args, **kwargs):
        raise OSError(f"{name}: cannot open shared object file: No such file or directory")

    monkeypatch.setattr(pynvml, "CDLL", no_library)
    monkeypatch.setattr(pynvml, "nvmlLib", None)

    sensors, missing, _ = nvml.probe()

    assert sensors == []
    assert "NVML library not found" in missing[0].reason
    assert "driver" in missing[0].fix


@pytest.mark.parametrize(
    ("error", "words"),
    [
        (fake_nvml.NVML_ERROR_LIBRARY_NOT_FOUND, "NVML library not found"),
        (fake_nvml.NVML_ERROR_DRIVER_NOT_LOADED, "not loaded"),
        (fake_nvml.NVML_ERROR_NO_PERMISSION, "Insufficient Permissions"),
    ],
)
def test_nvml_init_failure_is_a_missing_sensor(fake, error, words):
    fake.configure(init_error=error)

    sensors, missing, _ = nvml.probe()

    assert sensors == []
    assert words in missing[0].reason


def test_no_pynvml_module_is_a_missing_sensor(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", None)  # import pynvml raises ImportError

    _, missing, _ = nvml.probe()

    assert missing[0].reason == "pynvml is not installed"
    assert missing[0].fix == "pip install nvidia-ml-py"


def test_no_gpu_is_a_missing_sensor(fake):
    _, missing, _ = nvml.probe()

    assert "sees no GPU" in missing[0].reason


def test_one_sensor_per_gpu_each_holding_one_nvml_reference(fake):
    state = fake.configure(gpus=[FakeGpu(), FakeGpu(name="NVIDIA A100-SXM4-40GB")])

    sensors, missing, _ = nvml.probe()

    assert [s.name for s in sensors] == ["nvml:0", "nvml:1"]
    assert sensors[1].device_name == "NVIDIA A100-SXM4-40GB"
    assert missing == []
    assert state.refcount == 2
    for sensor in sensors:
        sensor.close()
    assert state.refcount == 0


def test_energy_counter_in_mj_becomes_joules_since_opening(fake):
    clock = ManualClock()
    fake.configure(gpus=[FakeGpu(power_w=200.0, clock=clock)])
    (sensor,), _, _ = nvml.probe()

    clock.t += 1.0
    reading = sensor.read()

    assert sensor.method == "counter"
    assert reading.energy_j == pytest.approx(200.0, abs=200.0 * 0.1)  # within one 100 ms step
    assert reading.power_w is None


def test_energy_counter_moves_only_every_update_period(fake):
    clock = ManualClock(t=1000.05)  # mid-step: the counter moves at 1000.1 and 1000.2
    fake.configure(gpus=[FakeGpu(power_w=100.0, clock=clock)])
    (sensor,), _, _ = nvml.probe()

    values = []
    for _ in range(10):  # reads at 1000.07, 1000.09 ... 1000.25
        clock.t += 0.02
        values.append(sensor.read().energy_j)

    assert values == pytest.approx([0, 0, 5, 5, 5, 5, 5, 15, 15, 15])


def test_gpu_without_energy_counter_polls_the_instant_power_field(fake):
    fake.configure(gpus=[FakeGpu(energy_counter=False, power_w=87.5)])
    (sensor,), _, _ = nvml.probe()

    reading = sensor.read()

    assert sensor.method == "polled-power"
    assert "instantaneous power field" in sensor.detail
    assert reading.energy_j is None
    assert reading.power_w == pytest.approx(87.5)


def test_gpu_without_energy_counter_integrates_the_drivers_power_samples(fake):
    """Kepler to Pascal: no counter, but the driver samples power itself (every 20 ms here);
    each read takes the new samples and adds their trapezoid to a cumulative energy."""
    clock = ManualClock(t=1000.0)
    wall_before = time.time()
    gpu = FakeGpu(energy_counter=False, power_samples=True, power_w=80.0, clock=clock)
    fake.configure(gpus=[gpu])
    fake.nvmlInit()
    sensor = nvml.NvmlSensor(0, clock=clock)  # the sampler's clock, the GPU's (wall) time
    # the fake GPU and the sensor each tie the manual clock to the wall clock when made: the
    # wall time between them (a loaded machine may pause this process) shifts the samples' times
    offset_error_s = time.time() - wall_before
    assert sensor.method == "power-samples" and "power samples" in sensor.detail
    assert sensor.update_period_s == pytest.approx(0.02)  # the driver's sampling interval

    clock.t += 1.0
    first = sensor.read()
    gpu.set_power_w(200.0)
    clock.t += 0.5
    second = sensor.read()

    assert first.t == pytest.approx(1001.0, abs=0.05 + offset_error_s)
    assert first.energy_j == pytest.approx(80.0)
    # 80 W until the change, 200 W after: the sample at the change's instant reads 200 W
    assert second.energy_j - first.energy_j == pytest.approx(0.5 * 200.0, abs=0.02 * 120.0)
    assert second.power_w == pytest.approx(200.0)
    clock.t += 0.001  # no new sample yet: the same reading, which the sampler ignores
    assert sensor.read() == second


def test_the_drivers_samples_are_integrated_in_time_order_each_stamp_once(fake):
    """A batch out of order, with a stamp twice (the driver's first kept) and one already
    integrated: trapezoids 100→200 W and 200→300 W over 20 ms each, 3 J + 5 J exactly."""
    sample, value = fake_nvml._Sample, fake_nvml._Value
    first = [sample(1_000_000, value(100_000)), sample(1_020_000, value(100_000))]
    samples = nvml.DriverPowerSamples(fake, None, ManualClock(t=0.0), first)

    reading = samples.decode([sample(1_060_000, value(300_000)), sample(1_040_000, value(200_000)),
                              sample(1_040_000, value(999_000)), sample(1_020_000, value(5))], 0.0)

    assert reading.energy_j == pytest.approx(8.0, abs=1e-12)
    assert reading.power_w == 300.0
    assert samples.decode([], 0.0) == reading  # nothing new: the same reading


def test_a_sensor_on_the_drivers_samples_is_read_at_the_display_rate(fake):
    from energy_console.core.measure.sampler import Sampler

    fake.configure(gpus=[FakeGpu(energy_counter=False, power_samples=True)])
    (sensor,), _, _ = nvml.probe()
    assert Sampler([sensor], sample_hz=20, display_hz=4).period_s == 0.25


def test_gpu_without_instant_field_falls_back_to_power_usage(fake):
    fake.configure(gpus=[FakeGpu(energy_counter=False, instant_power_field=False, power_w=61.0)])
    (sensor,), _, _ = nvml.probe()

    assert "power usage (mW" in sensor.detail
    assert sensor.update_period_s == nvml.NOMINAL_AVERAGE_POWER_PERIOD_S
    assert sensor.read().power_w == pytest.approx(61.0)


def test_sampler_integrates_polled_power_into_energy(fake):
    clock = ManualClock()
    gpu = FakeGpu(energy_counter=False, power_w=100.0, clock=clock)
    fake.configure(gpus=[gpu])
    fake.nvmlInit()
    sensor = nvml.NvmlSensor(0, clock=clock)
    sampler = Sampler([sensor], sample_hz=20)
    sampler.read_now()
    t0 = clock.t
    for step in range(40):  # 2 s: 100 W for 1 s, then 300 W for 1 s
        if step == 20:
            gpu.set_power_w(300.0)
        clock.t += 0.05
        sampler.read_now()
    window = sampler.window(sampler.energy_at(t0), t0, clock.t)["nvml:0"]

    # the trapezoid spreads the jump over the 50 ms after it: half that rectangle (5 J) is lost
    assert window.energy_j == pytest.approx(100.0 + 300.0 - 5.0)


def test_gpu_snapshot_reports_units_converted_and_throttle_names(fake):
    fake.configure(gpus=[FakeGpu(power_limit_w=350.0, throttle_mask=0x4 | 0x40, sm_clock_mhz=1410)])

    snapshot = nvml.gpu_snapshot(0)

    assert snapshot == {
        "index": 0,
        "name": "NVIDIA H100 80GB HBM3",
        "driver": "550.54.15",
        "power_limit_w": 350.0,
        "temperature_c": 41,
        "sm_clock_mhz": 1410,
        "throttle_reasons": ["sw_power_cap", "hw_thermal_slowdown"],
    }
    assert fake.state.refcount == 0


def test_gpu_snapshot_leaves_refused_readings_empty(fake, monkeypatch):
    fake.configure(gpus=[FakeGpu()])

    def refuse(*_):
        raise fake.NVMLError(fake.NVML_ERROR_NOT_SUPPORTED)

    monkeypatch.setattr(fake, "nvmlDeviceGetTemperature", refuse)

    snapshot = nvml.gpu_snapshot(0)

    assert snapshot["temperature_c"] is None
    assert snapshot["sm_clock_mhz"] == 1980


def test_unknown_throttle_bits_are_kept_visible():
    assert nvml.throttle_reason_names(0x1 | 0x800) == ["gpu_idle", "other(0x800)"]

"""The session rules (session.rules), each on its own: the local loop, GPU lanes and Ray
stations all call these."""

from __future__ import annotations

import sys
import time

import pytest
from energy_console.core.measure.sampler import Sampler
from energy_console.core.measure.sensors.base import SensorInfo
from energy_console.core.measure.sensors.nvml import NvmlSensor
from energy_console.core.session.plan import plan_batches
from energy_console.core.session.profile_check import load_profile
from energy_console.core.session.rules import (
    IdleSchedule,
    UnloadableModels,
    before_variant,
    charged_sensors,
    cooldown_before_s,
    take_idle_baseline,
)
from energy_console.core.spec.profile import ProtocolSettings

import tests.fakes.pynvml as fake_nvml
from tests.fakes.pynvml import FakeGpu
from tests.session_helpers import write_profile

CPU = SensorInfo("rapl:package-0", "cpu", True, "counter")
DRAM = SensorInfo("rapl:dram-0", "dram", True, "counter")
GPU0 = SensorInfo("nvml:0", "gpu", True, "counter", device_index=0)
GPU1 = SensorInfo("nvml:1", "gpu", True, "counter", device_index=1)


@pytest.fixture
def gpu_sampler(monkeypatch):
    """A running sampler of one fake GPU drawing 80 W."""
    monkeypatch.setitem(sys.modules, "pynvml", fake_nvml)
    fake_nvml.configure(gpus=[FakeGpu(power_w=80.0)])
    fake_nvml.nvmlInit()
    sampler = Sampler([NvmlSensor(0)], sample_hz=20)
    sampler.start()
    yield sampler
    sampler.stop()


def test_the_idle_baseline_is_taken_first_and_again_once_the_refresh_time_has_passed():
    schedule = IdleSchedule(ProtocolSettings(idle_seconds=2, idle_refresh_s=600))
    assert schedule.due(now=100.0)
    schedule.taken(now=102.0)
    assert not schedule.due(now=701.0)
    assert schedule.due(now=702.0)


def test_no_idle_seconds_means_no_baseline_and_no_refresh_means_one():
    assert not IdleSchedule(ProtocolSettings(idle_seconds=0)).due(now=0.0)
    once = IdleSchedule(ProtocolSettings(idle_seconds=2, idle_refresh_s=0))
    once.taken(now=0.0)
    assert not once.due(now=1e9)


def test_the_cooldown_comes_before_every_variant_of_a_lane_but_its_first():
    protocol = ProtocolSettings(cooldown_s=5)
    assert cooldown_before_s(protocol, first=True) == 0.0
    assert cooldown_before_s(protocol, first=False) == 5


def test_the_idle_baseline_is_each_sensors_mean_power_over_the_wait(gpu_sampler):
    reading = take_idle_baseline(gpu_sampler, 0.6, time.sleep)
    assert reading.duration_s == pytest.approx(0.6, abs=0.1)
    assert reading.power_w["nvml:0"] == pytest.approx(80.0, rel=0.25)


def test_before_a_variant_the_lane_rests_then_takes_the_baseline_when_due(gpu_sampler):
    protocol = ProtocolSettings(idle_seconds=0.3, idle_refresh_s=600, cooldown_s=2)
    schedule, waits = IdleSchedule(protocol), []

    def wait(seconds: float) -> None:
        waits.append(seconds)
        time.sleep(min(seconds, 0.3))

    first = before_variant(protocol, schedule, gpu_sampler, True, wait, stopped=lambda: False)
    assert first is not None and "nvml:0" in first.power_w
    assert waits == [0.0, 0.3]  # no rest before the first; then the baseline
    assert before_variant(protocol, schedule, gpu_sampler, False, wait,
                          stopped=lambda: False) is None  # not due again yet
    assert waits[2:] == [2]


def test_a_stopping_session_takes_no_baseline(gpu_sampler):
    protocol = ProtocolSettings(idle_seconds=0.3)
    assert before_variant(protocol, IdleSchedule(protocol), gpu_sampler, True, time.sleep,
                          stopped=lambda: True) is None


def test_a_run_is_charged_with_its_own_gpu_and_the_host_only():
    sensors = [CPU, DRAM, GPU0, GPU1]
    assert charged_sensors(sensors, 1) == [CPU, DRAM, GPU1]
    assert charged_sensors(sensors, None) == [CPU, DRAM]


def test_a_model_that_could_not_load_is_not_tried_again_in_the_session(tmp_path):
    profile = load_profile(write_profile(tmp_path, "models: [demo/tiny-bert-random, "
                                         "demo/tiny-gpt2-random]\ntechniques: [baseline, "
                                         "dynamic-int8]\n"))
    specs = [spec for batch in plan_batches(profile) for spec in batch.runs]
    bert = [s for s in specs if s.model.ref == "demo/tiny-bert-random"]
    gpt2 = [s for s in specs if s.model.ref == "demo/tiny-gpt2-random"]
    unloadable = UnloadableModels()
    unloadable.remember(bert[0], "hub unreachable")
    unloadable.remember(bert[1], "a later failure")  # the first reason is kept
    reason = unloadable.skip_reason(bert[1])
    assert reason is not None and "demo/tiny-bert-random could not be loaded" in reason
    assert f"{bert[0].run_id}: hub unreachable" in reason
    assert unloadable.skip_reason(gpt2[0]) is None

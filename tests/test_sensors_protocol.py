"""Every sensor class keeps the one protocol: callers ask attributes, never probe with getattr."""

from __future__ import annotations

import sys

from energy_console.core.measure.sensors import Sensor, describe, rapl
from energy_console.core.measure.sensors.estimate import EstimatedCpuSensor
from energy_console.core.measure.sensors.nvml import probe as nvml_probe

import tests.fakes.pynvml as fake_nvml
from tests.fakes.powercap import build_powercap_tree
from tests.fakes.pynvml import FakeGpu


def test_each_gpu_sensor_names_its_device_index_and_describe_carries_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", fake_nvml)
    fake_nvml.configure(gpus=[FakeGpu(), FakeGpu(energy_counter=False)])
    sensors, _, _ = nvml_probe()
    try:
        assert all(isinstance(s, Sensor) and s.kind == "gpu" for s in sensors)
        infos = [describe(s) for s in sensors]
        assert [i.device_index for i in infos] == [0, 1]
        assert [i.update_period_s for i in infos] == [s.update_period_s for s in sensors]
        assert infos[0].update_period_s is not None and infos[0].detail
    finally:
        for sensor in sensors:
            sensor.close()


def test_host_sensors_have_no_device_index(tmp_path, monkeypatch):
    build_powercap_tree(tmp_path, sockets=1, dram=True)
    monkeypatch.setenv(rapl.POWERCAP_ROOT_ENV, str(tmp_path))
    sensors, _, _ = rapl.probe()
    sensors.append(EstimatedCpuSensor(tdp_w=50))
    try:
        assert all(isinstance(s, Sensor) for s in sensors)
        infos = {s.name: describe(s) for s in sensors}
        assert {i.kind for i in infos.values()} == {"cpu", "dram"}
        assert all(i.device_index is None for i in infos.values())
        assert infos["rapl:package-0"].update_period_s == rapl.RaplSensor.update_period_s
        assert infos["cpu-estimate"].update_period_s is None  # no hardware period
    finally:
        for sensor in sensors:
            sensor.close()

"""Runner helpers that need no session: which sensors a run is charged with, short windows."""

from __future__ import annotations

from energy_console.core.runner import sensors_for_device, short_window_warnings


class _Gpu:
    kind, measured = "gpu", True

    def __init__(self, index):
        self.index, self.name = index, f"nvml:{index}"


class _Cpu:
    kind, measured, name = "cpu", True, "rapl:package-0"


def test_a_cuda_run_is_charged_with_its_own_gpu_and_the_host(monkeypatch):
    sensors = [_Cpu(), _Gpu(0), _Gpu(1), _Gpu(2)]
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    assert [s.name for s in sensors_for_device(sensors, "cuda:1")] == ["rapl:package-0",
                                                                       "nvml:1"]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,0")
    assert [s.name for s in sensors_for_device(sensors, "cuda:0")] == ["rapl:package-0",
                                                                       "nvml:2"]
    assert [s.name for s in sensors_for_device(sensors, "cpu")] == ["rapl:package-0"]


def test_windows_too_short_for_a_sensor_are_flagged_with_their_error_bound():
    class Counter:
        name, update_period_s = "nvml:0", 0.1

    (warning,) = short_window_warnings([Counter()], window_s=0.5)
    assert "nvml:0" in warning and "±20%" in warning and "min_window_s" in warning
    assert short_window_warnings([Counter()], window_s=1.0) == []

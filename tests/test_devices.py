"""The devices a profile can name here, found through a fake NVML (tests/fakes/pynvml)."""

from __future__ import annotations

import sys

import pytest
from energy_console.core.measure.devices import list_devices

from tests.fakes import pynvml as fake_nvml
from tests.fakes.pynvml import NVML_ERROR_LIBRARY_NOT_FOUND, FakeGpu


@pytest.fixture
def two_gpus(monkeypatch):
    """A machine with two GPUs, which CUDA sees (the bare host hides them from CUDA)."""
    fake_nvml.configure(gpus=[FakeGpu(name="NVIDIA H100 80GB HBM3", uuid="GPU-aaaa-1"),
                              FakeGpu(name="NVIDIA L4", memory_total_mib=24 * 1024,
                                      uuid="GPU-bbbb-2")])
    monkeypatch.setitem(sys.modules, "pynvml", fake_nvml)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    return fake_nvml.state


def names(devices) -> list[str]:
    return [d.name for d in devices]


def test_a_machine_without_a_driver_offers_auto_and_cpu():
    assert names(list_devices()) == ["auto", "cpu"]  # the bare host: NVML library not found


def test_each_gpu_is_listed_with_its_name_and_memory(two_gpus):
    devices = list_devices()
    assert names(devices) == ["auto", "cpu", "cuda:0", "cuda:1"]
    assert devices[2].description == "NVIDIA H100 80GB HBM3, 80 GiB"
    assert devices[3].description == "NVIDIA L4, 24 GiB"
    assert devices[3].memory_bytes == 24 * 2**30
    assert two_gpus.refcount == 0  # NVML released


@pytest.mark.parametrize(("visible", "shown"), [
    ("1", ["NVIDIA L4"]),
    ("1,0", ["NVIDIA L4", "NVIDIA H100 80GB HBM3"]),
    ("GPU-bbbb", ["NVIDIA L4"]),
    ("0,7,1", ["NVIDIA H100 80GB HBM3"]),  # CUDA stops at the first entry naming no GPU
    ("", []),
])
def test_cuda_numbers_the_gpus_cuda_visible_devices_names(two_gpus, monkeypatch, visible, shown):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", visible)
    cuda = [d for d in list_devices() if d.name.startswith("cuda")]
    assert names(cuda) == [f"cuda:{n}" for n in range(len(shown))]
    assert [d.description.split(",")[0] for d in cuda] == shown


def test_nvml_failing_after_init_leaves_the_cpu(two_gpus, monkeypatch):
    def lost(handle):
        raise fake_nvml.NVMLError(fake_nvml.NVML_ERROR_GPU_IS_LOST)

    monkeypatch.setattr(fake_nvml, "nvmlDeviceGetName", lost)
    assert names(list_devices()) == ["auto", "cpu"]
    assert two_gpus.refcount == 0


def test_a_refused_memory_reading_leaves_the_name(two_gpus, monkeypatch):
    def refused(handle):
        raise fake_nvml.NVMLError(fake_nvml.NVML_ERROR_NOT_SUPPORTED)

    monkeypatch.setattr(fake_nvml, "nvmlDeviceGetMemoryInfo", refused)
    gpu = list_devices()[2]
    assert (gpu.description, gpu.memory_bytes) == ("NVIDIA H100 80GB HBM3", None)


def test_no_pynvml_module_offers_auto_and_cpu(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", None)
    assert names(list_devices()) == ["auto", "cpu"]


def test_no_driver_through_the_fake_offers_auto_and_cpu(monkeypatch):
    fake_nvml.configure(gpus=[FakeGpu()], init_error=NVML_ERROR_LIBRARY_NOT_FOUND)
    monkeypatch.setitem(sys.modules, "pynvml", fake_nvml)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    assert names(list_devices()) == ["auto", "cpu"]

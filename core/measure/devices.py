"""The devices a profile's `device:` can name on this machine: auto, cpu, and cuda:N per GPU.

GPUs are found through NVML (`import pynvml`, inside the function), never through torch, so the
console can list them without importing torch. CUDA numbers the GPUs it can see: with
CUDA_VISIBLE_DEVICES set, cuda:N is the N-th GPU that variable names, not NVML's N-th.
"""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class Device:
    name: str  # as a profile writes it: auto, cpu, cuda:0, ...
    description: str  # for a reader: "NVIDIA H100 80GB HBM3, 80 GiB"
    memory_bytes: int | None = None  # a GPU's total memory, where NVML gives it


AUTO = Device("auto", "cuda:0 where torch sees a GPU, else the CPU")  # as the worker resolves it
CPU = Device("cpu", "the CPU")


def list_devices() -> list[Device]:
    """auto, cpu, then one cuda:N per GPU that CUDA would see here (none where NVML is missing
    or fails: the machine then offers the CPU only, which is what a run would find)."""
    return [AUTO, CPU, *(_cuda_devices())]


def _cuda_devices() -> list[Device]:
    try:
        import pynvml
    except ImportError:
        return []
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError:
        return []
    try:
        gpus = [_gpu(pynvml, index) for index in range(pynvml.nvmlDeviceGetCount())]
    except pynvml.NVMLError:
        gpus = []
    finally:
        pynvml.nvmlShutdown()
    visible = _visible(os.environ.get("CUDA_VISIBLE_DEVICES"), gpus)
    return [Device(f"cuda:{n}", gpu.description, gpu.memory_bytes)
            for n, gpu in enumerate(visible)]


@dataclass(frozen=True)
class _Gpu:
    description: str
    memory_bytes: int | None
    uuid: str | None


def _gpu(pynvml, index: int) -> _Gpu:
    """What NVML says of GPU `index`; a reading it refuses is left out, not an error."""
    handle = pynvml.nvmlDeviceGetHandleByIndex(index)
    name = _text(pynvml.nvmlDeviceGetName(handle))
    try:
        memory_bytes: int | None = int(pynvml.nvmlDeviceGetMemoryInfo(handle).total)
    except pynvml.NVMLError:
        memory_bytes = None
    try:
        uuid: str | None = _text(pynvml.nvmlDeviceGetUUID(handle))
    except (pynvml.NVMLError, AttributeError):
        uuid = None
    if memory_bytes is not None:
        name = f"{name}, {memory_bytes / 2**30:.0f} GiB"
    return _Gpu(name, memory_bytes, uuid)


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _visible(variable: str | None, gpus: list[_Gpu]) -> list[_Gpu]:
    """The GPUs CUDA numbers 0, 1, ...: all of them when CUDA_VISIBLE_DEVICES is unset; else
    those it names by index or UUID (prefix), up to the first entry that names none (CUDA
    ignores the rest too); none when it is empty."""
    if variable is None:
        return list(gpus)
    chosen: list[int] = []
    for part in (p.strip() for p in variable.split(",")):
        if part.isdigit():
            found = [int(part)] if int(part) < len(gpus) else []
        else:
            found = [i for i, g in enumerate(gpus) if part.startswith("GPU-") and g.uuid
                     and g.uuid.startswith(part)]
        if len(found) != 1 or found[0] in chosen:
            break
        chosen.append(found[0])
    return [gpus[i] for i in chosen]

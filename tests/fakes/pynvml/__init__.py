"""A fake `pynvml` (nvidia-ml-py) for machines without an NVIDIA GPU.

It keeps what the code under test relies on: the function names, the NVMLError class hierarchy
(NVMLError(code) builds the matching subclass, str() gives NVML's message), NVML's units (power in
mW, energy in mJ, power limit in mW) and counter semantics (the total-energy counter is a large
running value that moves only every ~100 ms), nvmlInit/nvmlShutdown reference counting, the
field-values API with a per-field nvmlReturn, and the driver's power sample buffer
(nvmlDeviceGetSamples: samples on a time grid, wall-clock µs, NotFound when none is newer).

Tests install it with `monkeypatch.setitem(sys.modules, "pynvml", fake)` after
`fake.configure(...)`.

Other processes get it by having tests/fakes on their PYTHONPATH (tests/fakes/host.py does this):
imported there under its own name, `pynvml`, it configures itself from FAKE_PYNVML_ENV:
"library-not-found" (nvmlInit raises NVMLError_LibraryNotFound, as on a machine without a
driver) or "gpus:N" (N GPUs as FakeGpu() describes them). Imported as tests.fakes.pynvml it
ignores the variable: tests configure that copy themselves.
"""

from __future__ import annotations

import bisect
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import NamedTuple

FAKE_PYNVML_ENV = "ENERGY_CONSOLE_TEST_FAKE_NVML"

NVML_SUCCESS = 0
NVML_ERROR_UNINITIALIZED = 1
NVML_ERROR_INVALID_ARGUMENT = 2
NVML_ERROR_NOT_SUPPORTED = 3
NVML_ERROR_NO_PERMISSION = 4
NVML_ERROR_NOT_FOUND = 6
NVML_ERROR_DRIVER_NOT_LOADED = 9
NVML_ERROR_LIBRARY_NOT_FOUND = 12
NVML_ERROR_GPU_IS_LOST = 15
NVML_ERROR_UNKNOWN = 999

NVML_TEMPERATURE_GPU = 0
NVML_CLOCK_GRAPHICS = 0
NVML_CLOCK_SM = 1
NVML_CLOCK_MEM = 2
NVML_FEATURE_DISABLED = 0
NVML_FEATURE_ENABLED = 1
NVML_FI_DEV_POWER_INSTANT = 186
NVML_VALUE_TYPE_UNSIGNED_INT = 1
NVML_TOTAL_POWER_SAMPLES = 0

_MESSAGES = {
    NVML_ERROR_UNINITIALIZED: "Uninitialized",
    NVML_ERROR_INVALID_ARGUMENT: "Invalid Argument",
    NVML_ERROR_NOT_SUPPORTED: "Not Supported",
    NVML_ERROR_NO_PERMISSION: "Insufficient Permissions",
    NVML_ERROR_DRIVER_NOT_LOADED: "Driver Not Loaded",
    NVML_ERROR_LIBRARY_NOT_FOUND: "NVML Shared Library Not Found",
    NVML_ERROR_GPU_IS_LOST: "GPU is lost",
    NVML_ERROR_UNKNOWN: "Unknown Error",
}


class NVMLError(Exception):
    _valClassMapping: dict[int, type] = {}

    def __new__(cls, value):
        if cls is NVMLError:
            cls = NVMLError._valClassMapping.get(value, cls)
        obj = Exception.__new__(cls)
        obj.value = value
        return obj

    def __str__(self):
        return _MESSAGES.get(self.value, f"NVML Error with code {self.value}")


def _error_class(name: str, code: int) -> type:
    def new(cls, *args):
        return NVMLError.__new__(cls, code)

    error = type(name, (NVMLError,), {"__new__": new, "__module__": __name__})
    NVMLError._valClassMapping[code] = error
    return error


NVMLError_Uninitialized = _error_class("NVMLError_Uninitialized", NVML_ERROR_UNINITIALIZED)
NVMLError_InvalidArgument = _error_class("NVMLError_InvalidArgument", NVML_ERROR_INVALID_ARGUMENT)
NVMLError_NotSupported = _error_class("NVMLError_NotSupported", NVML_ERROR_NOT_SUPPORTED)
NVMLError_NoPermission = _error_class("NVMLError_NoPermission", NVML_ERROR_NO_PERMISSION)
NVMLError_DriverNotLoaded = _error_class("NVMLError_DriverNotLoaded", NVML_ERROR_DRIVER_NOT_LOADED)
NVMLError_LibraryNotFound = _error_class(
    "NVMLError_LibraryNotFound", NVML_ERROR_LIBRARY_NOT_FOUND
)
NVMLError_GpuIsLost = _error_class("NVMLError_GpuIsLost", NVML_ERROR_GPU_IS_LOST)
NVMLError_NotFound = _error_class("NVMLError_NotFound", NVML_ERROR_NOT_FOUND)
NVMLError_Unknown = _error_class("NVMLError_Unknown", NVML_ERROR_UNKNOWN)


class _Value(NamedTuple):  # nvmlValue_t, as power samples fill it
    uiVal: int


class _Sample(NamedTuple):  # nvmlSample_t
    timeStamp: int  # µs, wall clock
    sampleValue: _Value


@dataclass
class FakeGpu:
    """One GPU drawing `power_w` (changeable with set_power_w)."""

    name: str = "NVIDIA H100 80GB HBM3"
    power_w: float = 120.0
    energy_counter: bool = True  # Volta and newer
    instant_power_field: bool = True
    power_samples: bool = False  # the driver's power sample buffer (nvmlDeviceGetSamples)
    sample_period_s: float = 0.02  # the driver's power sampling interval
    sample_buffer: int = 120  # samples the driver keeps (seconds of them at 20 ms)
    update_period_s: float = 0.1  # how often the energy counter moves
    energy_origin_mj: int = 987_654_321  # the counter counts from the driver's load, not from 0
    power_limit_w: float = 700.0
    temperature_c: int = 41
    sm_clock_mhz: int = 1980
    throttle_mask: int = 0x1  # gpu_idle
    uuid: str = "GPU-00000000-0000-0000-0000-000000000000"
    default_power_limit_w: float | None = None  # None: the enforced limit is the default
    persistence_mode: int = NVML_FEATURE_ENABLED
    max_sm_clock_mhz: int = 1980
    memory_total_mib: int = 81_559
    memory_used_mib: int = 512  # the driver's own reservation on an idle GPU
    # other processes on the GPU: (pid, used memory in MiB); compute and graphics contexts
    compute_processes: list[tuple[int, int]] = field(default_factory=list)
    graphics_processes: list[tuple[int, int]] = field(default_factory=list)
    clock: Callable[[], float] = time.monotonic
    _t0: float = field(init=False)
    _base_mj: float = field(init=False)
    _floor_mj: int = field(init=False)
    _powers: list[tuple[float, float]] = field(init=False)  # (from t, power_w), for the samples
    _wall_offset_s: float = field(init=False)  # the clock's time to the wall clock's

    def __post_init__(self):
        self._t0 = self.clock()
        self._base_mj = float(self.energy_origin_mj)
        self._floor_mj = self.energy_origin_mj
        self._powers = [(-math.inf, self.power_w)]
        self._wall_offset_s = time.time() - self._t0

    def power_samples_since(self, last_seen_us: int) -> list:
        """The buffer's samples newer than last_seen_us: the power at each grid instant. Built a
        stretch of steady power at a time, so that a fetch costs the sampler about what pynvml's
        does (two calls into the driver, a slice of ctypes structs), not a search per sample."""
        period_s, offset_s, powers = self.sample_period_s, self._wall_offset_s, self._powers
        newest = math.floor(self.clock() / period_s)
        seen = math.floor((last_seen_us / 1e6 - offset_s) / period_s)
        k = max(newest - self.sample_buffer, seen - 1) + 1
        segment = bisect.bisect_right(powers, (k * period_s, math.inf)) - 1  # the power at k
        samples: list[_Sample] = []
        while k <= newest:
            changes_at = powers[segment + 1][0] if segment + 1 < len(powers) else math.inf
            end = k  # past the last instant of this power (none where it changed again at once)
            while end <= newest and end * period_s < changes_at:
                end += 1
            value = _Value(round(powers[segment][1] * 1e3))
            stamps = [round((j * period_s + offset_s) * 1e6) for j in range(k, end)]
            samples += [_Sample(stamp, value) for stamp in stamps if stamp > last_seen_us]
            k, segment = end, segment + 1
        return samples

    def true_energy_mj(self, t: float) -> float:
        return self._base_mj + self.power_w * (t - self._t0) * 1e3

    def counter_mj(self) -> int:
        """The energy at the counter's last update instant (updates on a fixed time grid)."""
        updated_at = math.floor(self.clock() / self.update_period_s) * self.update_period_s
        if updated_at < self._t0:
            return self._floor_mj
        return int(self.true_energy_mj(updated_at))

    def set_power_w(self, power_w: float) -> None:
        now = self.clock()
        self._floor_mj = self.counter_mj()
        self._base_mj = self.true_energy_mj(now)
        self._t0 = now
        self.power_w = power_w
        self._powers.append((now, power_w))


@dataclass
class _State:
    gpus: list[FakeGpu] = field(default_factory=list)
    init_error: int | None = None  # e.g. NVML_ERROR_LIBRARY_NOT_FOUND: nvmlInit raises it
    driver_version: str = "550.54.15"
    refcount: int = 0
    calls: int = 0


state = _State()


def configure(gpus: list[FakeGpu] | None = None, init_error: int | None = None) -> _State:
    """Reset the fake: these GPUs, and nvmlInit raising init_error if given."""
    global state
    state = _State(gpus=list(gpus or []), init_error=init_error)
    return state


def configure_from_env(value: str | None) -> _State:
    """The state FAKE_PYNVML_ENV asks for: "library-not-found", "gpus:N", or unset (no GPU)."""
    if not value:
        return configure()
    if value == "library-not-found":
        return configure(init_error=NVML_ERROR_LIBRARY_NOT_FOUND)
    kind, _, count = value.partition(":")
    if kind == "gpus" and count.isdigit():
        return configure(gpus=[FakeGpu() for _ in range(int(count))])
    raise ValueError(f"{FAKE_PYNVML_ENV}={value!r}: use 'library-not-found' or 'gpus:N'")


if __name__ == "pynvml":  # another process's `import pynvml`, through PYTHONPATH
    configure_from_env(os.environ.get(FAKE_PYNVML_ENV))


def _check_init() -> None:
    state.calls += 1
    if state.refcount <= 0:
        raise NVMLError(NVML_ERROR_UNINITIALIZED)


def _gpu(handle) -> FakeGpu:
    _check_init()
    if not isinstance(handle, SimpleNamespace) or handle.index >= len(state.gpus):
        raise NVMLError(NVML_ERROR_INVALID_ARGUMENT)
    return state.gpus[handle.index]


def nvmlInit() -> None:
    if state.init_error is not None:
        raise NVMLError(state.init_error)
    state.refcount += 1


def nvmlShutdown() -> None:
    _check_init()
    state.refcount -= 1


def nvmlDeviceGetCount() -> int:
    _check_init()
    return len(state.gpus)


def nvmlDeviceGetHandleByIndex(index: int):
    _check_init()
    if not 0 <= index < len(state.gpus):
        raise NVMLError(NVML_ERROR_INVALID_ARGUMENT)
    return SimpleNamespace(index=index)


def nvmlDeviceGetName(handle) -> str:
    return _gpu(handle).name


def nvmlDeviceGetUUID(handle) -> str:
    return _gpu(handle).uuid


def nvmlSystemGetDriverVersion() -> str:
    _check_init()
    return state.driver_version


def nvmlDeviceGetTotalEnergyConsumption(handle) -> int:
    gpu = _gpu(handle)
    if not gpu.energy_counter:
        raise NVMLError(NVML_ERROR_NOT_SUPPORTED)
    return gpu.counter_mj()


def nvmlDeviceGetPowerUsage(handle) -> int:
    return int(_gpu(handle).power_w * 1e3)


def nvmlDeviceGetSamples(handle, sampling_type, timeStamp):
    gpu = _gpu(handle)
    if not gpu.power_samples or sampling_type != NVML_TOTAL_POWER_SAMPLES:
        raise NVMLError(NVML_ERROR_NOT_SUPPORTED)
    samples = gpu.power_samples_since(timeStamp)
    if not samples:
        raise NVMLError(NVML_ERROR_NOT_FOUND)
    return NVML_VALUE_TYPE_UNSIGNED_INT, samples


def nvmlDeviceGetFieldValues(handle, fieldIds):
    gpu = _gpu(handle)
    values = []
    for field_id in fieldIds:
        supported = field_id == NVML_FI_DEV_POWER_INSTANT and gpu.instant_power_field
        values.append(
            SimpleNamespace(
                fieldId=field_id,
                scopeId=0,
                timestamp=int(gpu.clock() * 1e6),
                latencyUsec=0,
                valueType=NVML_VALUE_TYPE_UNSIGNED_INT,
                nvmlReturn=NVML_SUCCESS if supported else NVML_ERROR_NOT_SUPPORTED,
                value=SimpleNamespace(uiVal=int(gpu.power_w * 1e3) if supported else 0),
            )
        )
    return values


def nvmlDeviceGetEnforcedPowerLimit(handle) -> int:
    return int(_gpu(handle).power_limit_w * 1e3)


def nvmlDeviceGetTemperature(handle, sensor: int) -> int:
    gpu = _gpu(handle)
    if sensor != NVML_TEMPERATURE_GPU:
        raise NVMLError(NVML_ERROR_INVALID_ARGUMENT)
    return gpu.temperature_c


def nvmlDeviceGetClockInfo(handle, clock_type: int) -> int:
    gpu = _gpu(handle)
    if clock_type != NVML_CLOCK_SM:
        raise NVMLError(NVML_ERROR_NOT_SUPPORTED)
    return gpu.sm_clock_mhz


def nvmlDeviceGetCurrentClocksEventReasons(handle) -> int:
    return _gpu(handle).throttle_mask


nvmlDeviceGetCurrentClocksThrottleReasons = nvmlDeviceGetCurrentClocksEventReasons


def nvmlDeviceGetPowerManagementDefaultLimit(handle) -> int:
    gpu = _gpu(handle)
    limit_w = gpu.default_power_limit_w if gpu.default_power_limit_w is not None \
        else gpu.power_limit_w
    return int(limit_w * 1e3)


def nvmlDeviceGetPersistenceMode(handle) -> int:
    return _gpu(handle).persistence_mode


def nvmlDeviceGetMaxClockInfo(handle, clock_type: int) -> int:
    gpu = _gpu(handle)
    if clock_type != NVML_CLOCK_SM:
        raise NVMLError(NVML_ERROR_NOT_SUPPORTED)
    return gpu.max_sm_clock_mhz


def nvmlDeviceGetMemoryInfo(handle):
    """Bytes, as NVML gives them (total, free, used)."""
    gpu = _gpu(handle)
    total, used = gpu.memory_total_mib * 2**20, gpu.memory_used_mib * 2**20
    return SimpleNamespace(total=total, free=total - used, used=used)


def _processes(pairs: list[tuple[int, int]]) -> list:
    return [SimpleNamespace(pid=pid, usedGpuMemory=mib * 2**20, gpuInstanceId=0xFFFFFFFF,
                            computeInstanceId=0xFFFFFFFF) for pid, mib in pairs]


def nvmlDeviceGetComputeRunningProcesses(handle) -> list:
    """nvmlProcessInfo_t-like objects: pid, usedGpuMemory in bytes (None where NVML hides it)."""
    return _processes(_gpu(handle).compute_processes)


def nvmlDeviceGetGraphicsRunningProcesses(handle) -> list:
    return _processes(_gpu(handle).graphics_processes)

"""NVIDIA GPU power through NVML (`import pynvml`, from the nvidia-ml-py package).

One sensor per GPU. Volta and newer have a total-energy counter in mJ that moves about every 100 ms:
used where supported. Older GPUs only give power, in mW. Where the driver keeps its own power
samples (nvmlDeviceGetSamples, NVML_TOTAL_POWER_SAMPLES: Kepler and newer, each with a wall-clock
time in µs) the sensor fetches the new ones at each read and integrates them by trapezoid: a
cumulative energy, read at window edges and the display rate like a counter, at the driver's
sampling rate rather than the sampler's. Else the instantaneous field (NVML_FI_DEV_POWER_INSTANT)
where the driver has it, or nvmlDeviceGetPowerUsage (a 1 s average on Ampere and newer), polled
at sample_hz and integrated by the sampler. pynvml is imported inside functions so importing
this module costs nothing on machines without a GPU.
"""

from __future__ import annotations

import itertools
import statistics
import time
from collections.abc import Callable, Collection, Sequence
from functools import partial
from operator import add, attrgetter, mul, sub
from typing import Any

from energy_console.core.measure.sensors.base import (
    POLLED_POWER,
    POWER_SAMPLES,
    MissingSensor,
    Reading,
    SensorKind,
    new_reading,
)

NOMINAL_COUNTER_PERIOD_S = 0.1
NOMINAL_INSTANT_POWER_PERIOD_S = 0.1
NOMINAL_AVERAGE_POWER_PERIOD_S = 1.0
# A driver's newest power sample further than this from the wall clock is in another clock: its
# samples are not used (the sensor polls instead).
SAMPLE_CLOCK_TOLERANCE_S = 10.0

# Clock event (throttle) reason bits, as nvml.h defines them.
THROTTLE_REASONS = {
    0x1: "gpu_idle",
    0x2: "applications_clocks_setting",
    0x4: "sw_power_cap",
    0x8: "hw_slowdown",
    0x10: "sync_boost",
    0x20: "sw_thermal_slowdown",
    0x40: "hw_thermal_slowdown",
    0x80: "hw_power_brake_slowdown",
    0x100: "display_clock_setting",
}


# The reasons that slow a GPU down against its work: a window timed under them measures the
# throttle, not the model (idle, application clocks, sync boost and display clocks do not).
SLOWING_REASONS = {0x4: "power cap", 0x8: "hardware slowdown", 0x20: "thermal (software)",
                   0x40: "thermal (hardware)", 0x80: "power brake"}


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value


def throttle_reason_names(mask: int) -> list[str]:
    names = [name for bit, name in THROTTLE_REASONS.items() if mask & bit]
    unknown = mask & ~sum(THROTTLE_REASONS)
    return names + ([f"other(0x{unknown:x})"] if unknown else [])


class NvmlSensor:
    """One GPU: its energy counter where supported, else the driver's power samples, else its
    polled power."""

    kind: SensorKind = "gpu"
    measured = True

    def __init__(self, index: int, clock: Callable[[], float] = time.monotonic) -> None:
        import pynvml

        self.device_index: int | None = index
        self.clock = clock
        self.name = f"nvml:{index}"
        self._nvml = pynvml
        self._handle = pynvml.nvmlDeviceGetHandleByIndex(index)
        self.device_name = _text(pynvml.nvmlDeviceGetName(self._handle))
        counter_origin_mj = self._energy_mj()
        samples = (None if counter_origin_mj is not None
                   else DriverPowerSamples.open(pynvml, self._handle, clock))
        # The source, chosen once: what a reading calls (bound once, see SplitReadSensor), how it
        # is decoded, and the period it moves at, nominal until period.calibrate measures it.
        self.read_raw: Callable[[], Any]
        self.decode: Callable[[Any, float], Reading]
        self.quantum_j: float | None = None
        if counter_origin_mj is not None:
            self._counter_origin_mj = counter_origin_mj
            self.method, self.quantum_j = "counter", 1e-3  # the counter counts mJ
            self.update_period_s: float | None = NOMINAL_COUNTER_PERIOD_S
            source = "total-energy counter (mJ)"
            self.read_raw = partial(pynvml.nvmlDeviceGetTotalEnergyConsumption, self._handle)
            self.decode = self._decode_counter
        elif samples:
            self.method, self.update_period_s = POWER_SAMPLES, samples.period_s
            source = "the driver's power samples (mW)"
            self.read_raw, self.decode = samples.fetch, samples.decode
        elif self._has_instant_power_field():
            self.method, self.update_period_s = POLLED_POWER, NOMINAL_INSTANT_POWER_PERIOD_S
            source = "instantaneous power field (mW)"
            self.read_raw = partial(pynvml.nvmlDeviceGetFieldValues, self._handle,
                                    [pynvml.NVML_FI_DEV_POWER_INSTANT])
            self.decode = self._decode_instant_field
        else:  # the averaged power reading covers ~1 s on Ampere and newer
            self.method, self.update_period_s = POLLED_POWER, NOMINAL_AVERAGE_POWER_PERIOD_S
            source = "power usage (mW, the driver's average)"
            self.read_raw = partial(pynvml.nvmlDeviceGetPowerUsage, self._handle)
            self.decode = self._decode_power_mw
        self.detail = f"{self.device_name}: {source}"

    def _energy_mj(self) -> int | None:
        try:
            return self._nvml.nvmlDeviceGetTotalEnergyConsumption(self._handle)
        except self._nvml.NVMLError_NotSupported:
            return None

    def _has_instant_power_field(self) -> bool:
        field_id = getattr(self._nvml, "NVML_FI_DEV_POWER_INSTANT", None)
        if field_id is None:
            return False
        try:
            return self._instant_power_mw() is not None
        except self._nvml.NVMLError:
            return False

    def _instant_power_mw(self) -> int | None:
        (value,) = self._nvml.nvmlDeviceGetFieldValues(
            self._handle, [self._nvml.NVML_FI_DEV_POWER_INSTANT]
        )
        return value.value.uiVal if value.nvmlReturn == self._nvml.NVML_SUCCESS else None

    def read(self) -> Reading:
        return self.decode(self.read_raw(), self.clock())

    def _decode_counter(self, raw_mj: int, t: float) -> Reading:
        return new_reading((t, (raw_mj - self._counter_origin_mj) / 1e3, None))

    def _decode_instant_field(self, raw: Any, t: float) -> Reading:
        (value,) = raw
        if value.nvmlReturn != self._nvml.NVML_SUCCESS:
            return new_reading((t, None, None))
        return self._decode_power_mw(value.value.uiVal, t)

    @staticmethod
    def _decode_power_mw(raw_mw: int, t: float) -> Reading:
        return new_reading((t, None, raw_mw / 1e3))

    def close(self) -> None:
        self._nvml.nvmlShutdown()  # each sensor holds one nvmlInit reference


class DriverPowerSamples:
    """A GPU's power as its driver sampled it: fetch() takes the samples newer than the last
    fetched (a C call and a comparison: it runs in the sampler's tick), decode() integrates them
    by trapezoid, in order, into a cumulative energy from the first sample seen."""

    def __init__(self, nvml: Any, handle: Any, clock: Callable[[], float],
                 first: Sequence[Any]) -> None:
        self._get = partial(nvml.nvmlDeviceGetSamples, handle, nvml.NVML_TOTAL_POWER_SAMPLES)
        self._none_new = nvml.NVMLError_NotFound
        self._offset_s = time.time() - clock()  # wall clock (the samples') to the sensor's clock
        times_us = sorted({s.timeStamp for s in first})
        # the driver's sampling interval: the update period of this sensor's energy
        self.period_s = statistics.median(b - a for a, b in itertools.pairwise(times_us)) / 1e6
        self._seen_us = times_us[-1]  # fetch() asks for newer samples than this
        self._last_us = times_us[-1]
        self._last_mw = _power_mw(max(first, key=_stamp_us))
        self._twice_energy_nj = 0  # integrated in integers (mW × µs = nJ): exact

    @classmethod
    def open(cls, nvml: Any, handle: Any, clock: Callable[[], float]) -> DriverPowerSamples | None:
        """None where the driver keeps no power samples, or too few, or in a clock not the
        wall clock's."""
        try:
            _, first = nvml.nvmlDeviceGetSamples(handle, nvml.NVML_TOTAL_POWER_SAMPLES, 0)
        except (nvml.NVMLError, AttributeError):
            return None
        stamps = {s.timeStamp for s in first}
        if len(stamps) < 2 or abs(max(stamps) / 1e6 - time.time()) > SAMPLE_CLOCK_TOLERANCE_S:
            return None
        return cls(nvml, handle, clock, first)

    def fetch(self) -> Sequence[Any]:
        try:
            _, samples = self._get(self._seen_us)
        except self._none_new:
            return ()
        if samples:
            self._seen_us = max(self._seen_us, max(map(_stamp_us, samples)))
        return samples

    def decode(self, samples: Sequence[Any], t: float) -> Reading:
        """The energy up to the newest sample, stamped with its time (a reading when nothing
        new came: at the previous newest sample's time, which the sampler ignores). The trapezoids
        are summed by C-level passes over the batch (about 50 samples a second)."""
        last_us = self._last_us
        # read backwards: of samples sharing a time stamp, the driver's first is the one kept
        backwards = samples[::-1]
        fresh = {stamp_us: power_mw for stamp_us, power_mw
                 in zip(map(_stamp_us, backwards), map(_power_mw, backwards), strict=True)
                 if stamp_us > last_us}
        if fresh:
            stamps_us = sorted(fresh)
            powers_mw = list(map(fresh.__getitem__, stamps_us))
            widths_us = map(sub, stamps_us, [last_us, *stamps_us[:-1]])
            heights_mw = map(add, powers_mw, [self._last_mw, *powers_mw[:-1]])
            self._twice_energy_nj += sum(map(mul, widths_us, heights_mw))
            self._last_us, self._last_mw = stamps_us[-1], powers_mw[-1]
        return new_reading((self._last_us / 1e6 - self._offset_s, self._twice_energy_nj * 0.5e-9,
                            self._last_mw / 1e3))


_stamp_us = attrgetter("timeStamp")  # of an nvmlSample_t: µs, wall clock
_power_mw = attrgetter("sampleValue.uiVal")  # of a power sample: mW


def _missing(reason: str, fix: str) -> MissingSensor:
    return MissingSensor(name="nvml", reason=reason, fix=fix)


def probe() -> tuple[list[NvmlSensor], list[MissingSensor], list[str]]:
    """One sensor per NVIDIA GPU, or why there is none."""
    try:
        import pynvml
    except ImportError:
        return [], [_missing("pynvml is not installed", "pip install nvidia-ml-py")], []
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError_LibraryNotFound:
        return [], [_missing(
            "NVML library not found (libnvidia-ml.so): no NVIDIA driver on this machine",
            "On a machine with an NVIDIA GPU, install the NVIDIA driver (nvidia-smi must work).",
        )], []
    except pynvml.NVMLError_DriverNotLoaded:
        return [], [_missing(
            "the NVIDIA driver is installed but not loaded",
            "sudo modprobe nvidia   # or reboot after a driver install; check with nvidia-smi",
        )], []
    except pynvml.NVMLError as exc:
        return [], [_missing(f"nvmlInit failed: {exc}", "Check that nvidia-smi works.")], []
    try:
        count = pynvml.nvmlDeviceGetCount()
        if count == 0:
            return [], [_missing("NVML works but sees no GPU", "Check nvidia-smi -L.")], []
        sensors, missing = [], []
        for index in range(count):
            pynvml.nvmlInit()  # a reference per sensor, released by its close()
            try:
                sensors.append(NvmlSensor(index))
            except pynvml.NVMLError as exc:
                pynvml.nvmlShutdown()
                missing.append(_missing(f"GPU {index}: {exc}", f"Check nvidia-smi -i {index}."))
        return sensors, missing, []
    finally:
        pynvml.nvmlShutdown()


def _query(call, *args, default: Any = None) -> Any:
    """A reading the device refuses (not supported, no permission) becomes `default`."""
    import pynvml

    try:
        return call(*args)
    except pynvml.NVMLError:
        return default


def gpu_snapshot(index: int) -> dict[str, Any]:
    """A GPU's state, recorded per run at start and end (None where the GPU does not say)."""
    import pynvml

    pynvml.nvmlInit()
    try:
        handle = pynvml.nvmlDeviceGetHandleByIndex(index)
        name = _query(pynvml.nvmlDeviceGetName, handle)
        driver = _query(pynvml.nvmlSystemGetDriverVersion)
        limit_mw = _query(pynvml.nvmlDeviceGetEnforcedPowerLimit, handle)
        reasons = (  # renamed in NVML 12.2; older bindings only have the throttle name
            getattr(pynvml, "nvmlDeviceGetCurrentClocksEventReasons", None)
            or pynvml.nvmlDeviceGetCurrentClocksThrottleReasons
        )
        mask = _query(reasons, handle)
        return {
            "index": index,
            "name": None if name is None else _text(name),
            "driver": None if driver is None else _text(driver),
            "power_limit_w": None if limit_mw is None else limit_mw / 1e3,
            "temperature_c": _query(
                pynvml.nvmlDeviceGetTemperature, handle, pynvml.NVML_TEMPERATURE_GPU
            ),
            "sm_clock_mhz": _query(pynvml.nvmlDeviceGetClockInfo, handle, pynvml.NVML_CLOCK_SM),
            "throttle_reasons": None if mask is None else throttle_reason_names(mask),
        }
    finally:
        pynvml.nvmlShutdown()


def gpu_names() -> dict[int, str]:
    """Each GPU's name by NVML index; empty where NVML is missing or sees none."""
    try:
        import pynvml

        pynvml.nvmlInit()
    except Exception:  # ImportError, NVMLError and its kin: no GPU to name
        return {}
    try:
        return {i: _text(pynvml.nvmlDeviceGetName(pynvml.nvmlDeviceGetHandleByIndex(i)))
                for i in range(pynvml.nvmlDeviceGetCount())}
    except pynvml.NVMLError:
        return {}
    finally:
        pynvml.nvmlShutdown()


def gpu_disturbance(index: int, own_pids: Collection[int]) -> str:
    """What disturbs GPU `index` now, in words ('' when nothing does, or NVML cannot say):
    processes other than `own_pids` with a context on it (NVML's compute and graphics process
    lists), and clock event reasons that slow it (SLOWING_REASONS)."""
    try:
        import pynvml

        pynvml.nvmlInit()
    except Exception:  # ImportError, NVMLError and its kin: nothing to look at
        return ""
    try:
        handle = pynvml.nvmlDeviceGetHandleByIndex(index)
        pids = {p.pid for call in (pynvml.nvmlDeviceGetComputeRunningProcesses,
                                   pynvml.nvmlDeviceGetGraphicsRunningProcesses)
                for p in _query(call, handle, default=[])}
        reasons = (getattr(pynvml, "nvmlDeviceGetCurrentClocksEventReasons", None)
                   or pynvml.nvmlDeviceGetCurrentClocksThrottleReasons)
        mask = _query(reasons, handle, default=0)
    except pynvml.NVMLError:
        return ""
    finally:
        pynvml.nvmlShutdown()
    causes = []
    others = sorted(pids - set(own_pids))
    if others:
        causes.append(f"another process on GPU {index} (pid {', '.join(map(str, others))})")
    slowing = [name for bit, name in SLOWING_REASONS.items() if mask & bit]
    if slowing:
        causes.append(f"GPU {index} throttled ({', '.join(slowing)})")
    return "; ".join(causes)

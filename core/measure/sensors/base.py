"""The one protocol every power sensor keeps.

A sensor is read by the runner's sampler thread, never by the worker. `read()` returns a cumulative
energy counter in joules where the hardware has one (already unwrapped, monotonic since the sensor
was opened) and/or an instantaneous power in watts. The sampler turns either into cumulative energy.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any, Literal, NamedTuple, Protocol, runtime_checkable

SensorKind = Literal["gpu", "cpu", "dram", "system"]
# The one method whose readings are power alone, integrated between readings at the sampler's
# sample_hz; every other method (a counter, the estimate, a driver's power samples) reads a
# cumulative energy between any two reads.
POLLED_POWER = "polled-power"
# Power the driver sampled itself (NVML's sample buffer), fetched in batches and integrated
# between the driver's samples by the sensor: read like a counter.
POWER_SAMPLES = "power-samples"


class Reading(NamedTuple):
    """One reading (a named tuple: made 20 times a second per sensor, a third of a dataclass's
    cost; sensors build it with new_reading((t, energy_j, power_w)), cheaper still)."""

    t: float  # time.monotonic() when the value was read
    energy_j: float | None  # cumulative since the sensor was opened; None where only power exists
    power_w: float | None  # instantaneous (or the hardware's short average); None where unknown


# Reading((t, energy_j, power_w)) without the named tuple's Python-level __new__
new_reading = partial(tuple.__new__, Reading)


@runtime_checkable
class Sensor(Protocol):
    """Callers ask these attributes (Zeus-style capabilities), never parse `name` or probe."""

    name: str  # unique in a session: "cpu-estimate", "rapl:package-0", "nvml:0"
    kind: SensorKind
    measured: bool  # False for estimates; every figure using it is labelled "estimated"
    method: str  # counter | polled-power (POLLED_POWER) | power-samples | estimate
    detail: str  # device name, zone path, power model...
    # How often the value changes: nominal until core.sensors.period.calibrate measures it;
    # None where there is no hardware period (estimates are computed at each read).
    update_period_s: float | None
    device_index: int | None  # the GPU's NVML index for a GPU sensor; None otherwise

    def read(self) -> Reading: ...

    def close(self) -> None: ...


@runtime_checkable
class SplitReadSensor(Sensor, Protocol):
    """A sensor whose read() is `decode(read_raw(), clock())`, split for the sampler's thread.

    Each tick the thread only calls read_raw (bound once, a C-level call where possible: a pread on
    a held descriptor, an NVML call) and clock, and keeps both; the decoding (parsing, unwrapping,
    integrating) runs later for a batch of ticks, in order, where the interpreter's caches are warm.
    A woken thread runs its first microseconds cold, so a Python frame less per sensor per tick is
    most of what is left to cut. decode is called once per reading, in read order (it may keep
    state: a counter's last value).
    """

    read_raw: Callable[[], Any]
    clock: Callable[[], float]  # time.monotonic, or the test's fake clock

    def decode(self, raw: Any, t: float) -> Reading: ...


@dataclass(frozen=True)
class SensorInfo:
    """What a session records about a sensor it used (session.json, SessionStarted)."""

    name: str
    kind: SensorKind
    measured: bool
    method: str
    detail: str = ""  # device name, zone path, power model...
    update_period_s: float | None = None  # how often the reading changes, measured at start
    device_index: int | None = None  # the GPU's NVML index, for kind "gpu"
    quantum_j: float | None = None  # a counter's step (RAPL's µJ, NVML's mJ); None: no counter
    model_error_pct: float | None = None  # an estimate's stated error (95 %, % of its figure)


@dataclass(frozen=True)
class MissingSensor:
    """A source this machine does not offer, with why and what would fix it."""

    name: str
    reason: str
    fix: str = ""


@dataclass
class Detection:
    sensors: list[Sensor]
    missing: list[MissingSensor]
    notices: list[str]  # fallbacks the user must see (e.g. "RAPL unreadable: using the estimate")


def describe(sensor: Sensor) -> SensorInfo:
    return SensorInfo(
        name=sensor.name,
        kind=sensor.kind,
        measured=sensor.measured,
        method=sensor.method,
        detail=sensor.detail,
        update_period_s=sensor.update_period_s,
        device_index=sensor.device_index,
        quantum_j=getattr(sensor, "quantum_j", None),
        model_error_pct=getattr(sensor, "model_error_pct", None),
    )

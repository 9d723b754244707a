"""Estimated CPU power from utilisation, for machines with no readable energy counter.

Power model (linear in utilisation, as CodeCarbon and most CPU power models use):

    power_w = idle_w + (tdp_w - idle_w) * utilisation,   idle_w = IDLE_FRACTION * tdp_w

where utilisation is the busy fraction of all logical CPUs since the previous reading:
1 - (idle CPU time) / (CPUs x elapsed time). On Linux the idle time comes from /proc/uptime (the
kernel's idle time summed over CPUs, the same figure as /proc/stat's idle column), which costs a
fifth of a /proc/stat read; I/O wait counts as busy there (benchmark windows do no disk I/O).
Elsewhere psutil's CPU times. The TDP comes from the profile (`sensors: {cpu_tdp_w: ...}`);
without it, a guess of TDP_W_PER_CORE per physical core. Every figure made with this sensor is
labelled `estimated`.

The model is linear in the CPU-time counters, so its energy is itself a counter: each reading adds
the interval's power times its length to a cumulative energy, exact whatever the reads' spacing.
The sampler therefore reads it as it reads energy counters (at window edges and the display
rate), with no integration error; its step is the idle counter's (IDLE_STEP_S, USER_HZ).
"""

from __future__ import annotations

import io
import os
import time
from collections.abc import Callable
from functools import partial

import psutil
from energy_console.core.measure.sensors.base import Reading, SensorKind, new_reading

IDLE_FRACTION = 0.25
TDP_W_PER_CORE = 10.0
MIN_DEFAULT_TDP_W = 15.0
PROC_UPTIME = "/proc/uptime"
MODEL_ERROR_PCT = 30.0
IDLE_STEP_S = 0.01  # /proc/uptime and /proc/stat count CPU time in USER_HZ ticks (100 a second)


def default_tdp_w() -> float:
    cores = psutil.cpu_count(logical=False) or psutil.cpu_count() or 1
    return max(MIN_DEFAULT_TDP_W, TDP_W_PER_CORE * cores)


def psutil_idle_and_total_s() -> tuple[float, float]:
    """Idle (with I/O wait) and total CPU time summed over all CPUs, through psutil."""
    times = psutil.cpu_times()
    return times.idle + getattr(times, "iowait", 0.0), float(sum(times))


class EstimatedCpuSensor:
    kind: SensorKind = "cpu"
    measured = False
    method = "estimate"
    update_period_s: float | None = None  # computed at each read: no hardware period
    # a linear utilisation model against a CPU's measured package power: a stated bound, not a
    # measured one (it moves every figure of the machine alike)
    model_error_pct = MODEL_ERROR_PCT
    device_index: int | None = None

    def __init__(
        self,
        tdp_w: float | None = None,
        name: str = "cpu-estimate",
        *,
        cpus: int | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """`cpus` (logical CPUs, default this machine's) and `clock` are for tests."""
        self.name = name
        self._clock = clock
        self.tdp_w = float(tdp_w) if tdp_w else default_tdp_w()
        self.idle_w = IDLE_FRACTION * self.tdp_w
        self.detail = (
            f"linear model: {self.idle_w:.1f} W idle .. {self.tdp_w:.1f} W at full load"
            f" ({'TDP from profile' if tdp_w else 'TDP guessed from core count'})"
        )
        self._cpus = cpus or os.cpu_count() or 1
        # a step of the idle counter moves the busy time of one CPU by IDLE_STEP_S
        self.quantum_j = (self.tdp_w - self.idle_w) * IDLE_STEP_S / self._cpus
        self.clock = clock
        # kept open and re-read at offset 0 (a pread bound once, see SplitReadSensor): the kernel
        # makes a fresh /proc/uptime for each read
        self._uptime: io.FileIO | None = None
        self.read_raw: Callable[[], bytes | tuple[float, float]] = psutil_idle_and_total_s
        self._last_idle_s = self._last_total_s = self._energy_j = 0.0
        self._opened = True  # the first read sets the counters' origin: energy 0 from there
        try:
            self._uptime = open(PROC_UPTIME, "rb", buffering=0)
            self.read_raw = partial(os.pread, self._uptime.fileno(), 64, 0)
            self.read()
        except (OSError, ValueError, IndexError):  # not Linux
            self.close()
            self._uptime = None
            self.read_raw = psutil_idle_and_total_s
            self.read()

    def read(self) -> Reading:
        return self.decode(self.read_raw(), self.clock())

    def decode(self, raw: bytes | tuple[float, float], t: float) -> Reading:
        """The power over the utilisation since the previous reading, and the cumulative energy
        with that interval's (called in read order)."""
        if isinstance(raw, bytes):
            # "uptime_s idle_s": idle_s is the kernel's idle time summed over CPUs
            idle_s, total_s = float(raw.split()[1]), self._cpus * t
        else:
            idle_s, total_s = raw
        d_idle_s, d_total_s = idle_s - self._last_idle_s, total_s - self._last_total_s
        self._last_idle_s, self._last_total_s = idle_s, total_s
        busy = min(1.0, max(0.0, 1.0 - d_idle_s / d_total_s)) if d_total_s > 0 else 0.0
        power_w = self.idle_w + (self.tdp_w - self.idle_w) * busy
        if self._opened:
            self._opened = False
        elif d_total_s > 0:
            self._energy_j += power_w * d_total_s / self._cpus
        return new_reading((t, self._energy_j, power_w))

    def close(self) -> None:
        if self._uptime is not None:
            self._uptime.close()
            self.read_raw = _closed  # the descriptor's number may be reused: never read it again


def _closed() -> bytes:
    raise ValueError("I/O operation on closed file: the CPU estimate sensor was closed")

"""Estimated CPU power from utilisation, for machines with no readable energy counter.

Power model (linear in utilisation, as CodeCarbon and most CPU power models use):

    power_w = idle_w + (tdp_w - idle_w) * utilisation,   idle_w = IDLE_FRACTION * tdp_w

where utilisation is the busy fraction of all logical CPUs since the previous reading (/proc/stat,
or psutil elsewhere). The TDP comes from the profile (`sensors: {cpu_tdp_w: ...}`); without it, a
guess of TDP_W_PER_CORE per physical core. Every figure made with this sensor is labelled
`estimated`.
"""

from __future__ import annotations

import io
import os
import time

import psutil

from core.sensors.base import Reading

IDLE_FRACTION = 0.25
TDP_W_PER_CORE = 10.0
MIN_DEFAULT_TDP_W = 15.0
PROC_STAT = "/proc/stat"


def default_tdp_w() -> float:
    cores = psutil.cpu_count(logical=False) or psutil.cpu_count() or 1
    return max(MIN_DEFAULT_TDP_W, TDP_W_PER_CORE * cores)


def busy_and_total_ticks(proc_stat: bytes) -> tuple[int, int]:
    """Busy and total CPU time of all CPUs since boot, in the kernel's ticks, from /proc/stat."""
    # cpu user nice system idle iowait irq softirq steal (guest time is inside user and nice)
    fields = proc_stat.split(b"\n", 1)[0].split()
    user, nice, system, idle, iowait, irq, softirq, steal = map(int, fields[1:9])
    busy = user + nice + system + irq + softirq + steal
    return busy, busy + idle + iowait


def psutil_busy_and_total_s() -> tuple[float, float]:
    """The same in seconds, through psutil, where /proc/stat cannot be read."""
    times = psutil.cpu_times()
    idle = times.idle + getattr(times, "iowait", 0.0)
    return sum(times) - idle, float(sum(times))


class EstimatedCpuSensor:
    kind = "cpu"
    measured = False
    method = "estimate"

    def __init__(self, tdp_w: float | None = None, name: str = "cpu-estimate") -> None:
        self.name = name
        self.tdp_w = float(tdp_w) if tdp_w else default_tdp_w()
        self.idle_w = IDLE_FRACTION * self.tdp_w
        self.detail = (
            f"linear model: {self.idle_w:.1f} W idle .. {self.tdp_w:.1f} W at full load"
            f" ({'TDP from profile' if tdp_w else 'TDP guessed from core count'})"
        )
        # kept open and re-read at offset 0: the kernel makes a fresh /proc/stat for each read
        self._proc_stat: io.FileIO | None = None
        try:
            self._proc_stat = open(PROC_STAT, "rb", buffering=0)
            self._busy_and_total()
        except (OSError, ValueError):  # not Linux, or a /proc/stat without the usual cpu line
            self.close()
            self._proc_stat = None
        self._last = self._busy_and_total()

    def _busy_and_total(self) -> tuple[float, float]:
        if self._proc_stat is None:
            return psutil_busy_and_total_s()
        return busy_and_total_ticks(os.pread(self._proc_stat.fileno(), 512, 0))

    def utilisation(self) -> float:
        busy, total = self._busy_and_total()
        d_busy, d_total = busy - self._last[0], total - self._last[1]
        self._last = (busy, total)
        if d_total <= 0:
            return 0.0
        return min(1.0, max(0.0, d_busy / d_total))

    def read(self) -> Reading:
        u = self.utilisation()
        return Reading(
            t=time.monotonic(), energy_j=None, power_w=self.idle_w + (self.tdp_w - self.idle_w) * u
        )

    def close(self) -> None:
        if self._proc_stat is not None:
            self._proc_stat.close()

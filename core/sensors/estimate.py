"""Estimated CPU power from utilisation, for machines with no readable energy counter.

Power model (linear in utilisation, as CodeCarbon and most CPU power models use):

    power_w = idle_w + (tdp_w - idle_w) * utilisation,   idle_w = IDLE_FRACTION * tdp_w

where utilisation is the busy fraction of all logical CPUs since the previous reading (/proc/stat,
or psutil elsewhere). The TDP comes from the profile (`sensors: {cpu_tdp_w: ...}`); without it, a
guess of TDP_W_PER_CORE per physical core. Every figure made with this sensor is labelled
`estimated`.
"""

from __future__ import annotations

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


def cpu_busy_and_total() -> tuple[float, float]:
    """Busy and total CPU time of all CPUs since boot, in the kernel's ticks (or seconds)."""
    try:
        fd = os.open(PROC_STAT, os.O_RDONLY)
        try:
            first_line = os.read(fd, 512).split(b"\n", 1)[0]
        finally:
            os.close(fd)
        # cpu user nice system idle iowait irq softirq steal guest guest_nice
        ticks = [int(x) for x in first_line.split()[1:9]]
        return float(sum(ticks) - ticks[3] - ticks[4]), float(sum(ticks))
    except (OSError, ValueError, IndexError):
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
        self._last = cpu_busy_and_total()

    def utilisation(self) -> float:
        busy, total = cpu_busy_and_total()
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
        pass

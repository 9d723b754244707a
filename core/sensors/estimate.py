"""Estimated CPU power from utilisation, for machines with no readable energy counter.

Power model (linear in utilisation, as CodeCarbon and most CPU power models use):

    power_w = idle_w + (tdp_w - idle_w) * utilisation,   idle_w = IDLE_FRACTION * tdp_w

where utilisation is the busy fraction of all logical CPUs since the previous reading (psutil's
cpu_times). The TDP comes from the profile (`sensors: {cpu_tdp_w: ...}`); without it, a guess of
TDP_W_PER_CORE per physical core. Every figure made with this sensor is labelled `estimated`.
"""

from __future__ import annotations

import time

import psutil

from core.sensors.base import Reading

IDLE_FRACTION = 0.25
TDP_W_PER_CORE = 10.0
MIN_DEFAULT_TDP_W = 15.0


def default_tdp_w() -> float:
    cores = psutil.cpu_count(logical=False) or psutil.cpu_count() or 1
    return max(MIN_DEFAULT_TDP_W, TDP_W_PER_CORE * cores)


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
        self._last = psutil.cpu_times()

    def utilisation(self) -> float:
        now = psutil.cpu_times()
        busy = _busy(now) - _busy(self._last)
        total = sum(now) - sum(self._last)
        self._last = now
        if total <= 0:
            return 0.0
        return min(1.0, max(0.0, busy / total))

    def read(self) -> Reading:
        u = self.utilisation()
        return Reading(
            t=time.monotonic(), energy_j=None, power_w=self.idle_w + (self.tdp_w - self.idle_w) * u
        )

    def close(self) -> None:
        pass


def _busy(times) -> float:
    idle = times.idle + getattr(times, "iowait", 0.0)
    return sum(times) - idle

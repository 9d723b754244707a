"""A sensor's readings as a cumulative energy series, and the sample each reading becomes.

Counter sensors give the cumulative energy directly, power sensors are integrated by trapezoid
between consecutive readings; energy at any instant is interpolated between the readings around it.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections import deque
from dataclasses import dataclass
from functools import partial
from typing import NamedTuple

# A counter that has not moved for this long (ten NVML update periods) is drawing nothing.
STALLED_COUNTER_S = 1.0


class Sample(NamedTuple):
    """One sensor's reading as the sampler keeps it (a named tuple: cheaper than a dataclass)."""

    t: float  # monotonic
    sensor: str
    power_w: float | None
    energy_j: float  # cumulative since the sampler started


# Sample((t, ...)) without the named tuple's Python-level __new__: made ~7 times per round
_new_sample = partial(tuple.__new__, Sample)


@dataclass(frozen=True)
class EnergyWindow:
    sensor: str
    energy_j: float
    duration_s: float

    @property
    def avg_power_w(self) -> float:
        return self.energy_j / self.duration_s if self.duration_s > 0 else 0.0


class EnergySeries:
    """One sensor's cumulative energy over time.

    A counter that is read faster than it updates (NVML: every ~100 ms) repeats its value; only the
    readings where it moved are kept, so interpolation runs between the instants the counter
    changed rather than along a staircase, and power is the energy between two changes over their
    interval rather than alternating between zero and double.
    """

    def __init__(self, name: str, maxlen: int):
        self.name = name
        self.t: deque[float] = deque(maxlen=maxlen)
        self.energy_j: deque[float] = deque(maxlen=maxlen)
        self.last_power_w: float | None = None
        self._last_read_t = -math.inf
        # the last kept reading (t[-1], energy_j[-1]) as plain attributes: add() runs at 20 Hz
        self._kept_t: float | None = None
        self._kept_j = 0.0
        self._counter_origin: float | None = None

    def add(self, t: float, energy_j: float | None, power_w: float | None) -> Sample | None:
        if t <= self._last_read_t:
            return None
        kept_t = self._kept_t
        if energy_j is not None:
            if self._counter_origin is None:
                self._counter_origin = energy_j
            cumulative = energy_j - self._counter_origin
            if kept_t is not None:
                if cumulative == self._kept_j:  # the counter has not moved: not kept
                    self._last_read_t = t
                    if power_w is not None:
                        self.last_power_w = power_w
                    elif t - kept_t > STALLED_COUNTER_S:
                        self.last_power_w = 0.0
                    return _new_sample((t, self.name, self.last_power_w, cumulative))
                if power_w is None:
                    power_w = (cumulative - self._kept_j) / (t - kept_t)
        elif power_w is not None:
            if kept_t is None:
                cumulative = 0.0
            elif self.last_power_w is None:
                cumulative = self._kept_j
            else:
                cumulative = self._kept_j + 0.5 * (power_w + self.last_power_w) * (t - kept_t)
        else:
            return None
        self._last_read_t = self._kept_t = t
        self._kept_j = cumulative
        self.t.append(t)
        self.energy_j.append(cumulative)
        self.last_power_w = power_w
        return _new_sample((t, self.name, power_w, cumulative))

    def at(self, t: float) -> float:
        """Cumulative energy at t, linearly interpolated between the readings around it."""
        if not self.t:
            raise LookupError("no readings yet")
        i = bisect_left(self.t, t)
        if i <= 0:
            return self.energy_j[0]
        if i >= len(self.t):
            return self.energy_j[-1]
        t0, t1 = self.t[i - 1], self.t[i]
        e0, e1 = self.energy_j[i - 1], self.energy_j[i]
        return e0 + (e1 - e0) * (t - t0) / (t1 - t0)

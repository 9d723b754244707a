"""How often a sensor's value actually changes (its update period).

A counter read faster than it updates returns the same value several times (NVML's energy counter
moves about every 100 ms, RAPL's about every 1 ms). Energy over a window shorter than ~10 update
periods is poorly resolved, so the runner needs the period. It is found by polling for a short while
and taking the median interval between observed changes.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Mapping, Sequence

from energy_console.core.measure.sensors.base import Sensor

DEFAULT_PROBE_S = 0.6
DEFAULT_POLL_S = 0.001


def median_change_interval_s(times: Sequence[float], values: Sequence[float]) -> float | None:
    """Median time between changes of value; None with fewer than two changes seen."""
    change_times = [t for i, t in enumerate(times) if i > 0 and values[i] != values[i - 1]]
    intervals = [b - a for a, b in zip(change_times, change_times[1:], strict=False)]
    return statistics.median(intervals) if intervals else None


def detect_update_periods_s(
    reads: Mapping[str, Callable[[], float | None]],
    duration_s: float = DEFAULT_PROBE_S,
    poll_s: float = DEFAULT_POLL_S,
) -> dict[str, float | None]:
    """Each value source's update period, polling all of them together for duration_s.

    The result is quantised to the poll interval (a 1 ms counter reads as ~1 ms or slightly more).
    None where fewer than two changes were seen: the period is then longer than about duration_s/2,
    or the value is constant (an idle power reading).
    """
    history: dict[str, tuple[list[float], list[float]]] = {name: ([], []) for name in reads}
    end = time.monotonic() + duration_s
    while time.monotonic() < end:
        for name, read in reads.items():
            value = read()
            if value is not None:
                times, values = history[name]
                times.append(time.monotonic())
                values.append(value)
        time.sleep(poll_s)
    return {name: median_change_interval_s(*history[name]) for name in reads}


def sensor_value_reader(sensor: Sensor) -> Callable[[], float | None]:
    """What to watch for a sensor: its energy counter, or its power where it has no counter."""

    def read() -> float | None:
        reading = sensor.read()
        return reading.energy_j if reading.energy_j is not None else reading.power_w

    return read


def detect_sensor_periods_s(
    sensors: Sequence[Sensor], duration_s: float = DEFAULT_PROBE_S
) -> dict[str, float | None]:
    """Update period of each measured sensor (estimates have no hardware period: left out)."""
    reads = {s.name: sensor_value_reader(s) for s in sensors if s.measured}
    return detect_update_periods_s(reads, duration_s) if reads else {}


def calibrate(sensors: Sequence[Sensor], duration_s: float = DEFAULT_PROBE_S) -> dict[str, float]:
    """Measure each measured sensor's update period and store it as `sensor.update_period_s`.

    Call it before the sampler starts (it reads the sensors itself). Where no change was seen the
    sensor keeps its nominal period. Returns the periods now in force, by sensor name.
    """
    for name, period_s in detect_sensor_periods_s(sensors, duration_s).items():
        if period_s is not None:
            next(s for s in sensors if s.name == name).update_period_s = period_s
    return {s.name: s.update_period_s for s in sensors if s.update_period_s}

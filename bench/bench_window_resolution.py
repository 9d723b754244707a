"""Shortest window whose energy the Sampler resolves within 5 %, per kind of sensor.

Simulated time (no sleeping): a bursty power trace like batched inference (a 90 W floor, 150 W
bursts of 20-200 ms) is seen through three kinds of sensor, read at 20 Hz plus once at each window
edge as the runner does:
- counter, 100 ms steps (NVML total energy: integer mJ, moving every 100 ms),
- counter, 1 ms steps (RAPL energy_uj: 61 µJ units, moving every ~1 ms),
- polled power (instantaneous, integrated by trapezoid).
For each window length, 300 windows at random phases; the error is |measured − exact| / exact.
Edges are evaluated two ways: `at edge` (energy_at(t) called the moment the edge arrives, as the
runner does now) and `late` (evaluated once the window is over plus 0.3 s, so a counter's next
step is known and interpolation can use it).

    .venv/bin/python bench/bench_window_resolution.py
"""

from __future__ import annotations

import bisect
import math
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from energy_console.core.measure.sampler import Sampler  # noqa: E402
from energy_console.core.measure.sensors.base import Reading  # noqa: E402

LENGTHS_S = [0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0]
WINDOWS = 300
TOLERANCE = 0.05
SAMPLE_HZ = 20.0


class BurstyTrace:
    """Piecewise-constant power with its exact integral."""

    def __init__(self, seconds: float, rng: random.Random):
        self.starts, self.power_w, self.energy_j = [0.0], [], [0.0]
        t = 0.0
        while t < seconds:
            burst = rng.random() < 0.5
            duration = rng.uniform(0.02, 0.2)
            self.power_w.append(240.0 if burst else 90.0)
            t += duration
            self.energy_j.append(self.energy_j[-1] + self.power_w[-1] * duration)
            self.starts.append(t)

    def power_at(self, t: float) -> float:
        return self.power_w[bisect.bisect_right(self.starts, t) - 1]

    def energy_at(self, t: float) -> float:
        i = bisect.bisect_right(self.starts, t) - 1
        return self.energy_j[i] + self.power_w[i] * (t - self.starts[i])


class SimulatedSensor:
    measured = True
    kind = "gpu"

    def __init__(self, name, trace, clock, step_s=None, unit_j=None, phase_s=0.0):
        self.name, self.trace, self.clock = name, trace, clock
        self.step_s, self.unit_j, self.phase_s = step_s, unit_j, phase_s
        self.method = "counter" if step_s else "polled-power"

    def read(self) -> Reading:
        t = self.clock.t
        if self.step_s is None:
            return Reading(t=t, energy_j=None, power_w=self.trace.power_at(t))
        updated_at = math.floor((t - self.phase_s) / self.step_s) * self.step_s + self.phase_s
        energy_j = math.floor(self.trace.energy_at(updated_at) / self.unit_j) * self.unit_j
        return Reading(t=t, energy_j=energy_j, power_w=None)

    def close(self) -> None:
        pass


class Clock:
    t = 0.0


def measure(kind: dict, length_s: float, rng: random.Random) -> tuple[list[float], list[float]]:
    seconds = WINDOWS * (length_s + 0.4) + 2
    trace = BurstyTrace(seconds, rng)
    clock = Clock()
    sensor = SimulatedSensor("s", trace, clock, phase_s=rng.random() * 0.1, **kind)
    # the edge reads take history slots too: keep it all
    sampler = Sampler([sensor], sample_hz=SAMPLE_HZ, history_s=2 * seconds + 10)
    period = 1 / SAMPLE_HZ
    edges, events = [], []
    t = 1.0
    for _ in range(WINDOWS):
        t0 = t + rng.random() * 0.3
        edges.append((t0, t0 + length_s))
        events += [(t0, "start"), (t0 + length_s, "end")]
        t = t0 + length_s
    ticks = [i * period for i in range(int(seconds / period))]
    at_edge_errors, starts = [], {}
    for when, what in sorted([(x, "tick") for x in ticks] + events):
        clock.t = when
        sampler.read_now()
        if what == "start":
            starts[when] = sampler.energy_at(when)
        elif what == "end":
            t0 = when - length_s
            t0 = min(starts, key=lambda s, t0=t0: abs(s - t0))
            measured = sampler.window(starts.pop(t0), t0, when)["s"].energy_j
            at_edge_errors.append(_error(measured, trace.energy_at(when) - trace.energy_at(t0)))
    late_errors = []
    for t0, t1 in edges:
        measured = sampler.window(sampler.energy_at(t0), t0, t1)["s"].energy_j
        late_errors.append(_error(measured, trace.energy_at(t1) - trace.energy_at(t0)))
    return at_edge_errors, late_errors


def _error(measured: float, exact: float) -> float:
    return abs(measured - exact) / exact


def p95(values: list[float]) -> float:
    return sorted(values)[int(0.95 * (len(values) - 1))]


def main() -> None:
    kinds = {
        "counter 100 ms (NVML-like)": {"step_s": 0.1, "unit_j": 1e-3},
        "counter 1 ms (RAPL-like)": {"step_s": 0.001, "unit_j": 61e-6},
        "polled power (trapezoid)": {},
    }
    rng = random.Random(7)
    print(f"p95 relative error of window energy, sampler at {SAMPLE_HZ:g} Hz + edge reads")
    print(f"{'window':>8}  " + "  ".join(f"{name:>28}" for name in kinds))
    print(f"{'':>8}  " + "  ".join(f"{'at edge':>13} {'late':>14}" for _ in kinds))
    shortest = {name: {"at edge": None, "late": None} for name in kinds}
    for length_s in LENGTHS_S:
        cells = []
        for name, kind in kinds.items():
            at_edge, late = measure(kind, length_s, rng)
            for label, errors in (("at edge", at_edge), ("late", late)):
                if p95(errors) > TOLERANCE:  # the shortest length from which all longer pass
                    shortest[name][label] = None
                elif shortest[name][label] is None:
                    shortest[name][label] = length_s
            cells.append(f"{100 * p95(at_edge):>12.2f}% {100 * p95(late):>13.2f}%")
        print(f"{length_s:>7g}s  " + "  ".join(cells))
    print(f"\nshortest window within {TOLERANCE:.0%} (p95):")
    for name, found in shortest.items():
        print(f"  {name:<28} at edge: {_fmt(found['at edge'])}   late: {_fmt(found['late'])}")


def _fmt(length_s: float | None) -> str:
    return f"{length_s:g} s" if length_s is not None else f"> {LENGTHS_S[-1]:g} s"


if __name__ == "__main__":
    main()

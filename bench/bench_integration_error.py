"""Trapezoid integration error of the real Sampler on synthetic power traces with known integrals.

Each trace is a power-only sensor (like NVML without an energy counter) whose power is a function
of time.monotonic(); the sampler thread reads them all at 20 Hz for real, with an extra read at each
window edge as the runner does. The energy of each window is compared with the exact integral.
Target: below 0.1 % on smooth traces. Step traces are reported too: there the error comes from where
a step falls between two reads (up to half a sampling period of the step per step).

    .venv/bin/python bench/bench_integration_error.py [--seconds 12] [--hz 20]
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from energy_console.core.measure.sampler import Sampler  # noqa: E402
from energy_console.core.measure.sensors.base import Reading  # noqa: E402


@dataclass
class Trace:
    name: str
    power_w: Callable[[float], float]  # of seconds since the origin
    energy_j: Callable[[float], float]  # its integral from the origin


def traces() -> list[Trace]:
    def sine(a, b, period):
        w = 2 * math.pi / period
        return Trace(
            f"sine {a:g}+{b:g}sin(2πt/{period:g}s)",
            lambda t: a + b * math.sin(w * t),
            lambda t: a * t + b * (1 - math.cos(w * t)) / w,
        )

    def two_sines():
        s1, s2 = sine(100, 40, 1.7), sine(0, 25, 0.45)
        return Trace(
            "sum of sines (1.7 s + 0.45 s)",
            lambda t: s1.power_w(t) + s2.power_w(t),
            lambda t: s1.energy_j(t) + s2.energy_j(t),
        )

    def square(low, high, period):
        def energy(t):
            whole, part = divmod(t, period)
            return whole * (low + high) * period / 2 + (
                high * part if part < period / 2 else high * period / 2 + low * (part - period / 2)
            )

        return Trace(
            f"square {low:g}/{high:g} W every {period / 2:g} s",
            lambda t: high if (t % period) < period / 2 else low,
            energy,
        )

    return [
        Trace("ramp 20 W + 15 W/s", lambda t: 20 + 15 * t, lambda t: 20 * t + 7.5 * t * t),
        sine(120, 60, 2.3),
        two_sines(),
        square(60, 240, 0.74),
    ]


class TracePowerSensor:
    kind = "gpu"
    measured = True
    method = "polled-power"

    def __init__(self, trace: Trace, origin: float):
        self.name = trace.name
        self.trace = trace
        self.origin = origin

    def read(self) -> Reading:
        t = time.monotonic()
        return Reading(t=t, energy_j=None, power_w=self.trace.power_w(t - self.origin))

    def close(self) -> None:
        pass


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=12.0)
    parser.add_argument("--hz", type=float, default=20.0)
    args = parser.parse_args()

    origin = time.monotonic()
    sensors = [TracePowerSensor(trace, origin) for trace in traces()]
    sampler = Sampler(sensors, sample_hz=args.hz, history_s=args.seconds + 10)
    sampler.start()
    time.sleep(0.5)
    edges = []
    window_s = 2.0
    while time.monotonic() - origin < args.seconds - 0.3:
        t0 = sampler.read_now()[0].t  # the runner reads at each edge
        time.sleep(window_s * 0.93)
        t1 = sampler.read_now()[0].t
        edges.append((t0, t1))
    time.sleep(0.2)
    sampler.stop()
    edges.append((edges[0][0], edges[-1][1]))

    print(
        f"{len(edges) - 1} windows of ~{window_s * 0.93:.2f} s and one of "
        f"{edges[-1][1] - edges[-1][0]:.1f} s, sampler at {args.hz:g} Hz"
    )
    print(f"{'trace':<36} {'short windows: mean|err|':>25} {'max|err|':>10} {'long window':>12}")
    for sensor in sensors:
        errors = []
        for t0, t1 in edges:
            measured = sampler.window(sampler.energy_at(t0), t0, t1)[sensor.name].energy_j
            exact = sensor.trace.energy_j(t1 - origin) - sensor.trace.energy_j(t0 - origin)
            errors.append(abs(measured - exact) / exact * 100)
        short = errors[:-1]
        print(
            f"{sensor.name:<36} {sum(short) / len(short):>24.4f}% {max(short):>9.4f}% "
            f"{errors[-1]:>11.4f}%"
        )
    print("target: < 0.1 % on smooth traces")


if __name__ == "__main__":
    main()

"""The measurement protocol, worker side: warm-up, calibration, timed repeats.

The worker never reads a sensor. It reports each repeat's edges with time.monotonic() stamps (one
system-wide clock on Linux) and the runner reads the energy counters at those edges.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class ProtocolResult:
    iterations_per_repeat: int
    latencies_ms: list[list[float]]  # per repeat, per iteration
    windows: list[tuple[float, float]]  # monotonic (start, end) per repeat
    first_warmup_t: float | None  # monotonic, when the first warm-up iteration started


def calibrate_iterations(latency_s: float, min_window_s: float) -> int:
    """Iterations so that one timed window lasts at least min_window_s."""
    return max(1, math.ceil(min_window_s / max(latency_s, 1e-6)))


def run_protocol(
    infer: Callable[[], object],
    sync: Callable[[], None],
    *,
    warmup: int,
    repeats: int,
    min_window_s: float,
    iterations: int | None,
    mark: Callable[..., None],
) -> ProtocolResult:
    """Warm up, fix the iterations per repeat, then time `repeats` windows.

    `mark(phase, **fields)` tells the runner where we are; edges carry `t` (monotonic).
    """
    mark("warmup")
    first_warmup_t = time.monotonic()
    warmup_latencies = []
    for _ in range(max(1, warmup)):  # at least one iteration: calibration needs a latency
        t0 = time.monotonic()
        infer()
        sync()
        warmup_latencies.append(time.monotonic() - t0)
    steady = warmup_latencies[1:] or warmup_latencies
    typical_s = sorted(steady)[len(steady) // 2]
    n = iterations or calibrate_iterations(typical_s, min_window_s)

    latencies: list[list[float]] = []
    windows: list[tuple[float, float]] = []
    for repeat in range(1, repeats + 1):
        sync()
        start = time.monotonic()
        mark("repeat", repeat=repeat, repeats=repeats, iterations=n, edge="start", t=start)
        this_repeat = []
        for _ in range(n):
            t0 = time.monotonic()
            infer()
            sync()
            this_repeat.append((time.monotonic() - t0) * 1000.0)
        end = time.monotonic()
        mark("repeat", repeat=repeat, repeats=repeats, iterations=n, edge="end", t=end)
        latencies.append(this_repeat)
        windows.append((start, end))
    return ProtocolResult(n, latencies, windows, first_warmup_t)

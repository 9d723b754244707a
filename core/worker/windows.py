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
    iterations: list[int]  # per repeat
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
    """Warm up, estimate the iterations a window needs, then time `repeats` windows.

    A window runs at least the estimated iterations and goes on until it lasts min_window_s: a
    warm-up slowed by a busy machine cannot leave the later windows too short for the sensors.
    With `iterations` fixed, every window runs exactly that many. `mark(phase, **fields)` tells
    the runner where we are; edges carry `t` (monotonic).
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
    mark("ready")  # the runner has finished the previous run: no window overlaps its work

    latencies: list[list[float]] = []
    windows: list[tuple[float, float]] = []
    for repeat in range(1, repeats + 1):
        sync()
        start = time.monotonic()
        mark("repeat", repeat=repeat, repeats=repeats, iterations=n, edge="start", t=start)
        this_repeat: list[float] = []
        t1 = start
        while len(this_repeat) < n or (iterations is None and t1 - start < min_window_s):
            t0 = time.monotonic()
            infer()
            sync()
            t1 = time.monotonic()
            this_repeat.append((t1 - t0) * 1000.0)
        mark("repeat", repeat=repeat, repeats=repeats, iterations=len(this_repeat), edge="end",
             t=t1)
        latencies.append(this_repeat)
        windows.append((start, t1))
    return ProtocolResult([len(r) for r in latencies], latencies, windows, first_warmup_t)

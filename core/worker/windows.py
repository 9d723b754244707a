"""Timed windows, worker side: the one loop every workload's iterations are timed in.

A workload hands over what one iteration does (a forward pass, a generate call, an optimizer
step) and what it counts of each; this module warms up, calibrates, runs the windows and marks
their edges. The worker never reads a sensor: each window's edges carry time.monotonic() stamps
(one system-wide clock on Linux) and the runner reads the energy counters at those edges.
torch is imported where a function needs it (see core.worker.variant).
"""

from __future__ import annotations

import contextlib
import math
import resource
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

from energy_console.core.spec.profile import ProtocolSettings

RunMark = Callable[..., Any]  # mark(phase, **fields): one run's marks
REPEAT_PHASE = "repeat"  # the phase of a workload's main windows (generate's full generations)
# mark(JUDGE, judged=PHASE, windows=n) asks the runner whether the n windows of that phase the
# run has measured are enough: True, False, or None from a mark that cannot judge (then they are)
JUDGE = "judge"


def _count_nothing(result: Any, t0: float, t1: float) -> None:
    pass


def _start_nothing(iterations: int) -> None:
    pass


@dataclass(frozen=True)
class Iteration:
    """What one kind of window repeats, and what the workload counts of each timed call."""

    call: Callable[[], Any]  # one iteration; what it returns goes to `counted`
    phase: str = REPEAT_PHASE  # its windows' edges are marked with this phase
    # after each timed call, outside its latency: (what the call returned, its start, its end)
    counted: Callable[[Any, float, float], None] = _count_nothing
    # before each window, with the iterations it is planned to run
    window_starts: Callable[[int], None] = _start_nothing
    # a window runs a whole multiple of this many calls (generate: one pass over the prompts)
    whole_of: int = 1


@dataclass(frozen=True)
class TimedWindow:
    phase: str
    latencies_ms: tuple[float, ...]  # per iteration
    start_t: float  # monotonic, the marked edges
    end_t: float

    @property
    def iterations(self) -> int:
        return len(self.latencies_ms)


@dataclass(frozen=True)
class MeasuredWindows:
    windows: tuple[TimedWindow, ...]  # in the order they ran
    first_warmup_t: float  # monotonic, when the first warm-up iteration started
    peak_mem_mb: float  # from the warm-up on (see peak_memory_mb)

    def of(self, phase: str) -> tuple[TimedWindow, ...]:
        return tuple(w for w in self.windows if w.phase == phase)


class Autograd(Enum):
    """How autograd stands while the windows run."""

    INFERENCE_MODE = "inference_mode"  # measuring inference: the default
    NO_GRAD = "no_grad"  # inference where some kernels fail under inference_mode
    ON = "on"  # training


def calibrate_iterations(latency_s: float, min_window_s: float) -> int:
    """Iterations so that one timed window lasts at least min_window_s."""
    return max(1, math.ceil(min_window_s / max(latency_s, 1e-6)))


def measure_windows(iterations: Sequence[Iteration], protocol: ProtocolSettings, device: str,
                    mark: RunMark, autograd: Autograd = Autograd.INFERENCE_MODE
                    ) -> MeasuredWindows:
    """Warm up, estimate the iterations a window needs, then rounds of one window of each kind
    of iteration, in the order given; the device synchronised around every call, its peak
    memory reset before and read after.

    At least `protocol.repeats` rounds run. After each round from then on the runner judges the
    windows (mark(JUDGE)): enough once the run has `repeats` undisturbed windows and, with
    `protocol.target_ci_pct`, its intervals are within the target. Until then rounds go on
    while another one fits in `protocol.max_run_s` (counted from the first window's start).

    A window runs at least the estimated iterations and goes on until it lasts min_window_s: a
    warm-up slowed by a busy machine cannot leave the later windows too short for the sensors.
    With `protocol.iterations` fixed, every window runs exactly that many (rounded up to a
    whole multiple of the iteration's `whole_of`). `mark(phase,
    **fields)` tells the runner where we are; edges carry `t` (monotonic).
    """
    sync = device_sync(device)
    if device.startswith("cuda"):
        import torch

        torch.cuda.reset_peak_memory_stats(device)
    with _autograd(autograd):
        mark("warmup")
        first_warmup_t = time.monotonic()
        warmup_s: list[list[float]] = [[] for _ in iterations]
        for _ in range(max(1, protocol.warmup)):  # at least one: calibration needs a latency
            for iteration, seconds in zip(iterations, warmup_s, strict=True):
                t0 = time.monotonic()
                iteration.call()
                sync()
                seconds.append(time.monotonic() - t0)
        planned = [protocol.iterations or calibrate_iterations(_typical(s), protocol.min_window_s)
                   for s in warmup_s]
        mark("ready")  # the runner has finished the previous run: no window overlaps its work

        min_window_s = 0.0 if protocol.iterations else protocol.min_window_s
        judged = next((it.phase for it in iterations if it.phase == REPEAT_PHASE),
                      iterations[-1].phase)
        windows: list[TimedWindow] = []
        rounds = 0
        while True:
            rounds += 1
            windows += [timed_window(iteration, n, sync, mark, repeat=rounds,
                                     repeats=protocol.repeats, min_window_s=min_window_s)
                        for iteration, n in zip(iterations, planned, strict=True)]
            if rounds < protocol.repeats:
                continue
            count = sum(w.phase == judged for w in windows)
            if mark(JUDGE, judged=judged, windows=count) is not False:
                break
            spent_s = windows[-1].end_t - windows[0].start_t
            if spent_s * (rounds + 1) / rounds > protocol.max_run_s:
                break  # the next round would not fit in the budget
    return MeasuredWindows(tuple(windows), first_warmup_t, peak_memory_mb(device))


def timed_window(iteration: Iteration, planned: int, sync: Callable[[], None], mark: RunMark, *,
                 repeat: int, repeats: int, min_window_s: float) -> TimedWindow:
    """One window, its edges marked: at least `planned` iterations, and on until it lasts
    min_window_s and has run a whole multiple of `iteration.whole_of` calls."""
    iteration.window_starts(planned)
    sync()
    start = time.monotonic()
    mark(iteration.phase, repeat=repeat, repeats=repeats, iterations=planned, edge="start",
         t=start)
    latencies_ms: list[float] = []
    t1 = start
    while (len(latencies_ms) < planned or t1 - start < min_window_s
           or len(latencies_ms) % iteration.whole_of):
        t0 = time.monotonic()
        result = iteration.call()
        sync()
        t1 = time.monotonic()
        latencies_ms.append((t1 - t0) * 1000.0)
        iteration.counted(result, t0, t1)
    mark(iteration.phase, repeat=repeat, repeats=repeats, iterations=len(latencies_ms),
         edge="end", t=t1, latencies_ms=tuple(latencies_ms))
    return TimedWindow(iteration.phase, tuple(latencies_ms), start, t1)


def _typical(seconds: list[float]) -> float:
    """The median warm-up latency, the first (coldest) one left out where there are more."""
    steady = seconds[1:] or seconds
    return sorted(steady)[len(steady) // 2]


def _autograd(mode: Autograd) -> contextlib.AbstractContextManager[Any]:
    import torch

    if mode is Autograd.INFERENCE_MODE:
        return torch.inference_mode()
    if mode is Autograd.NO_GRAD:
        return torch.no_grad()
    return contextlib.nullcontext()


def device_sync(device: str) -> Callable[[], None]:
    """What waits for the device's queued work: a timed call ends when the device is done."""
    if device.startswith("cuda"):
        import torch

        return torch.cuda.synchronize
    return _no_sync


def _no_sync() -> None:
    pass


def peak_memory_mb(device: str) -> float:
    """CUDA: the peak since this run's reset; CPU: the worker's peak RSS so far (its sizes run
    smallest first, so mostly this run's)."""
    if device.startswith("cuda"):
        import torch

        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB

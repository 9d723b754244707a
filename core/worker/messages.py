"""What the worker and the runner say to each other over the worker's pipe: frozen dataclasses,
pickled whole between the project's own processes and matched by type on the other end.

The worker sends, for each of its runs in order, any number of `PhaseMark`s (and, once it has
its minimum windows, a `JudgeWindows` after each round of them), then one of `RunMeasured`,
`RunNotApplicable` or `RunError`. The runner sends `RunnerReady` when it follows a run; the worker
waits for it between the run's warm-up and its first window, so the runner's work on the previous
run never overlaps a window. It answers each JudgeWindows with `WindowsJudged`. Light on imports:
the runner's side reads them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from energy_console.core.store.figures import WorkerResult

WindowEdge = Literal["start", "end"]


@dataclass(frozen=True)
class PhaseMark:
    """The worker entered a phase of a run. A timed window's edges carry `edge` and the moment
    (time.monotonic(), the same clock in both processes) the runner reads the sensors at."""

    run_id: str
    phase: str
    t: float
    edge: WindowEdge | None = None
    repeat: int | None = None
    repeats: int | None = None
    iterations: int | None = None
    step: int | None = None  # training steps done, of `steps`
    steps: int | None = None
    loss: float | None = None
    detail: str | None = None  # what the phase is doing (loading: from the cache, downloading)
    latencies_ms: tuple[float, ...] = ()  # an end edge: the window's latencies, for its verdict


@dataclass(frozen=True)
class JudgeWindows:
    """The worker has run `windows` windows of `phase` in this run and asks whether they are
    enough (the runner alone knows their energy): it waits for WindowsJudged."""

    run_id: str
    phase: str
    windows: int


@dataclass(frozen=True)
class RunMeasured:
    run_id: str
    result: WorkerResult


@dataclass(frozen=True)
class RunNotApplicable:
    """The technique or the device rules the run out (core.models.base.NotApplicable)."""

    run_id: str
    reason: str


@dataclass(frozen=True)
class RunError:
    """The run failed in the worker. `errno` is that of the OSError behind the failure, if one
    is (a full disk ends the session); `ends_worker`: the worker exits after sending this, and
    the variant's remaining runs go on in a fresh one."""

    run_id: str
    reason: str  # the traceback, if any, is in the run's worker.log
    out_of_memory: bool
    ends_worker: bool
    errno: int | None = None


WorkerMessage = PhaseMark | JudgeWindows | RunMeasured | RunNotApplicable | RunError


@dataclass(frozen=True)
class RunnerReady:
    """The runner has recorded the previous run and follows this one: its windows may open."""

    run_id: str


@dataclass(frozen=True)
class WindowsJudged:
    """The runner's answer to JudgeWindows: `enough` once the run has its `repeats` undisturbed
    windows and, with protocol.target_ci_pct, its intervals are within the target."""

    run_id: str
    enough: bool

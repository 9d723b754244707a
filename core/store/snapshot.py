"""What a view shows of a session, as frozen values handed across threads: the session's
status and runs, and each sensor's recent power (folded from samples.csv rows by SensorTrace)."""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from energy_console.core.store.records import RunRecord

TRACE_SECONDS = 60.0  # how much history a sparkline shows
AVERAGE_SECONDS = 30.0


@dataclass(frozen=True)
class SensorView:
    name: str
    kind: str
    measured: bool
    recent_w: tuple[float, ...]  # the last TRACE_SECONDS of power, oldest first
    current_w: float | None
    average_30s_w: float | None
    peak_w: float | None
    idle_w: float | None
    energy_j: float | None  # cumulative since the session started


@dataclass(frozen=True)
class CurrentRun:
    run_id: str
    index: int
    total: int
    model: str
    technique: str
    input_size: str
    phase: str  # "loading", "warm-up", "repeat 2 of 3", ...
    where: str = ""  # runs pinned to a GPU (--gpus, --ray): "node/gpuN"


@dataclass(frozen=True)
class LiveSnapshot:
    path: Path
    status: str  # waiting | running | completed | stopped | failed | runner gone
    sensors: tuple[SensorView, ...]
    total_runs: int
    finished: int
    skipped: int
    failed: int
    elapsed_s: float
    eta_s: float | None
    current: CurrentRun | None  # the run started last of those in progress
    runs: tuple[RunRecord, ...]
    log: tuple[str, ...]  # the last LOG_LINES lines
    log_total: int = 0  # lines ever logged: a view shows the last log_total - shown of `log`
    message: str = ""
    info: Mapping[str, Any] = field(default_factory=dict)  # session.json
    problems: tuple[str, ...] = ()  # what in the session's files could not be read, and the fix
    running: tuple[CurrentRun, ...] = ()  # every run in progress (several with --gpus, --ray)
    eta_rough_pct: float | None = None  # how far eta_s may be off (None: a workload not timed)

    @property
    def ended_runs(self) -> int:
        return self.finished + self.skipped + self.failed

    @property
    def is_running(self) -> bool:
        return self.status in ("waiting", "running")

    @property
    def name(self) -> str:
        return self.path.name

    def new_log_lines(self, shown_total: int) -> tuple[str, ...]:
        """The lines logged since a view had shown `shown_total` (as many as are kept)."""
        fresh = self.log_total - shown_total
        if fresh <= 0:
            return ()
        return self.log[-fresh:] if fresh < len(self.log) else self.log


class SensorTrace:
    """One sensor's recent power, peak and energy, from samples.csv rows."""

    def __init__(self, name: str):
        self.name = name
        self.recent: deque[tuple[float, float]] = deque()
        self.peak_w: float | None = None
        self.energy_j: float | None = None
        self._last: tuple[float, float] | None = None  # (t, joules) for counter-only rows

    def add(self, t: float, watts: float | None, joules: float | None) -> None:
        if watts is None and joules is not None and self._last is not None and t > self._last[0]:
            watts = (joules - self._last[1]) / (t - self._last[0])
        if joules is not None:
            self._last = (t, joules)
            self.energy_j = joules
        if watts is None:
            return
        self.recent.append((t, watts))
        self.peak_w = watts if self.peak_w is None else max(self.peak_w, watts)
        while self.recent and self.recent[0][0] < t - TRACE_SECONDS:
            self.recent.popleft()

    def state(self) -> dict[str, Any]:
        """JSON-ready: what the trace holds (for a finished session's summary.json)."""
        return {"name": self.name, "recent": [list(p) for p in self.recent],
                "peak_w": self.peak_w, "energy_j": self.energy_j,
                "last": None if self._last is None else list(self._last)}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> SensorTrace:
        trace = cls(str(state["name"]))
        trace.recent.extend((float(t), float(w)) for t, w in state["recent"])
        trace.peak_w = _optional_float(state["peak_w"])
        trace.energy_j = _optional_float(state["energy_j"])
        last = state["last"]
        trace._last = None if last is None else (float(last[0]), float(last[1]))
        return trace

    def view(self, kind: str, measured: bool, idle_w: float | None) -> SensorView:
        current = self.recent[-1][1] if self.recent else None
        average = None
        if self.recent:
            since = self.recent[-1][0] - AVERAGE_SECONDS
            window = [w for t, w in self.recent if t >= since]
            average = sum(window) / len(window)
        return SensorView(self.name, kind, measured, tuple(w for _, w in self.recent), current,
                          average, self.peak_w, idle_w, self.energy_j)


def _optional_float(value: Any) -> float | None:
    return None if value is None else float(value)

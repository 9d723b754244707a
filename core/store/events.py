"""Typed events of a measurement session, one JSON object per line in events.jsonl.

The runner appends them; the TUI and the headless CLI are views that read them back. Every event has
`kind` (its class's KIND) and `t` (time.time(), wall clock, seconds) so a file can be read alone.
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass, field
from typing import Any, ClassVar


@dataclass(frozen=True)
class Event:
    KIND: ClassVar[str] = "event"
    t: float = field(default_factory=time.time, kw_only=True)

    def to_json(self) -> str:
        payload = {"kind": self.KIND, **dataclasses.asdict(self)}
        return json.dumps(payload, separators=(",", ":"), default=str)


@dataclass(frozen=True)
class SessionStarted(Event):
    KIND: ClassVar[str] = "session_started"
    session_id: str
    profile_name: str
    total_runs: int
    runner_pid: int
    sensors: list[dict[str, Any]]
    missing_sensors: list[dict[str, Any]]
    runs_by_workload: dict[str, int] = field(default_factory=dict)  # the plan: infer, generate…


@dataclass(frozen=True)
class Notice(Event):
    """Something the user must know: a fallback, a permission problem, a warning about a figure."""

    KIND: ClassVar[str] = "notice"
    level: str  # info | warning | error
    message: str
    run_id: str | None = None


@dataclass(frozen=True)
class IdleBaseline(Event):
    KIND: ClassVar[str] = "idle_baseline"
    duration_s: float
    power_w: dict[str, float]  # per sensor name
    # a GPU lane's or Ray station's own baseline (its GPU and the box's CPU/DRAM): where it ran
    node: str | None = None
    gpu_index: int | None = None
    cpu_shared: bool = False  # other lanes' runs loaded the box's CPU/DRAM while it was taken
    other_cpu_load_pct: float | None = None  # other processes' CPU use meanwhile, % of all cores


@dataclass(frozen=True)
class RunStarted(Event):
    KIND: ClassVar[str] = "run_started"
    run_id: str
    index: int  # 0-based position in the plan
    total: int
    model: str
    technique: str
    batch_size: int
    seq_len: int | None
    resolution: int | None
    worker_pid: int | None = None
    node: str | None = None  # runs pinned to a GPU (--gpus, --ray): where
    gpu_index: int | None = None
    max_new_tokens: int | None = None  # generate runs: part of the input's name
    workload: str = "infer"


@dataclass(frozen=True)
class WorkerEnded(Event):
    """A pinned run's worker is done and its GPU free again (--gpus, --ray); the run's record
    follows (RunFinished, RunFailed or RunSkipped). With RunStarted it gives each GPU's busy
    spans: runs on one GPU never overlap."""

    KIND: ClassVar[str] = "worker_ended"
    run_id: str
    node: str
    gpu_index: int


@dataclass(frozen=True)
class PhaseChanged(Event):
    """The worker entered a phase: loading, compressing, reference, warmup, repeat, quality;
    training runs: train (a timed window of optimizer steps) and train-step (progress)."""

    KIND: ClassVar[str] = "phase"
    run_id: str
    phase: str
    repeat: int | None = None  # 1-based, for phase == "repeat" or "train"
    repeats: int | None = None
    iterations: int | None = None
    step: int | None = None  # train-step: optimizer steps done, of `steps`, and the last loss
    steps: int | None = None
    loss: float | None = None
    # a window past the run's first `repeats`: the energy interval its windows reached so far
    # (% of the value) and the one asked for (protocol.target_ci_pct)
    energy_ci_pct: float | None = None
    target_ci_pct: float | None = None
    detail: str | None = None  # what the phase is doing (loading: from the cache, downloading)


@dataclass(frozen=True)
class RunFinished(Event):
    KIND: ClassVar[str] = "run_finished"
    run_id: str
    row: dict[str, Any]  # the run's runs.csv row


@dataclass(frozen=True)
class RunSkipped(Event):
    KIND: ClassVar[str] = "run_skipped"
    run_id: str
    reason: str


@dataclass(frozen=True)
class RunFailed(Event):
    KIND: ClassVar[str] = "run_failed"
    run_id: str
    reason: str


@dataclass(frozen=True)
class SessionFinished(Event):
    KIND: ClassVar[str] = "session_finished"
    status: str  # completed | stopped | failed
    finished: int
    skipped: int
    failed: int
    message: str = ""


EVENT_TYPES: dict[str, type[Event]] = {
    cls.KIND: cls
    for cls in (
        SessionStarted,
        Notice,
        IdleBaseline,
        RunStarted,
        WorkerEnded,
        PhaseChanged,
        RunFinished,
        RunSkipped,
        RunFailed,
        SessionFinished,
    )
}


def event_from_json(line: str) -> Event:
    """Parse one events.jsonl line back into its dataclass."""
    payload = json.loads(line)
    cls = EVENT_TYPES[payload.pop("kind")]
    names = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: v for k, v in payload.items() if k in names})

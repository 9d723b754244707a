"""What a session's views show, folded from its events and samples as they arrive.

`SessionModel` is the reader's state: `SessionReader` (follow.py) feeds it the lines it reads,
and it gives the frozen `LiveSnapshot` every view draws (sensor traces, runs in progress and
ended, counts, ETA, the log). It reads no file itself.
"""

from __future__ import annotations

import dataclasses
import statistics
from collections import Counter, deque
from pathlib import Path

from energy_console.core.store.events import (
    Event,
    IdleBaseline,
    Notice,
    PhaseChanged,
    RunFailed,
    RunFinished,
    RunSkipped,
    RunStarted,
    SessionFinished,
    SessionStarted,
)
from energy_console.core.store.records import RunRecord, input_label, model_label
from energy_console.core.store.snapshot import (
    CurrentRun,
    LiveSnapshot,
    SensorTrace,
    SensorView,
)

LOG_LINES = 200


PHASE_LABELS = {"warmup": "warm-up", "reference": "reference outputs"}


class SessionModel:
    """Everything the live view shows, folded from events and samples as they arrive."""

    def __init__(self, path: Path):
        self.path = path
        self.info: dict = {}
        self.traces: dict[str, SensorTrace] = {}
        self.idle_w: dict[str, float] = {}
        self.total_runs = 0
        self.started_t: float | None = None
        self.last_t: float | None = None
        self.current: CurrentRun | None = None
        self.run_started_t: float | None = None
        self.running: dict[str, tuple[CurrentRun, float]] = {}  # run id -> (run, start t)
        self.lanes = 1  # most runs seen in progress at once
        self.run_durations_s: dict[str, list[float]] = {}  # by workload: generate is slower
        self.run_workloads: dict[str, str] = {}  # run id -> workload, from its start
        self.planned: dict[str, int] = {}  # runs per workload, from the session's start
        self.counts = {"finished": 0, "skipped": 0, "failed": 0}
        self.finished_status: str | None = None
        self.message = ""
        self.event_records: dict[str, RunRecord] = {}
        self.csv_records: list[RunRecord] = []
        self.log: deque[str] = deque(maxlen=LOG_LINES)
        self.log_total = 0
        self.run_names: dict[str, str] = {}  # run id -> "tiny-bert-random · bf16 · b1-s64"
        self.problems: dict[str, str] = {}  # by file: what could not be read
        # bytes at the start of events.jsonl not read (a big session is read from its tail):
        # then the start comes from session.json and the counts from runs.csv
        self.events_skipped_bytes = 0
        self.ended_in_tail: dict[str, str] = {}  # run id -> status, runs ended in what was read

    def set_problem(self, key: str, message: str | None) -> None:
        """Record (or, with None, clear) what is wrong with one file; new ones go to the log too,
        so the live view shows them."""
        if message is None:
            self.problems.pop(key, None)
        elif self.problems.get(key) != message:
            self.problems[key] = message
            self._log(f"problem: {message}")

    # ---------------------------------------------------------------- input
    def add_event(self, event: Event) -> None:
        self.last_t = event.t
        if isinstance(event, SessionStarted):
            self.started_t = event.t
            self.total_runs = event.total_runs
            self.info.setdefault("sensors", event.sensors)
            self.info.setdefault("runner_pid", event.runner_pid)
            self.planned = dict(event.runs_by_workload)
        elif isinstance(event, IdleBaseline):
            self.idle_w.update(event.power_w)
        elif isinstance(event, RunStarted):
            self.total_runs = max(self.total_runs, event.total)
            where = "" if event.gpu_index is None else f"{event.node}/gpu{event.gpu_index}"
            self.current = CurrentRun(
                event.run_id, event.index, event.total, event.model, event.technique,
                input_label(event.batch_size, event.seq_len, event.resolution,
                            event.max_new_tokens), "starting", where)
            self.running[event.run_id] = (self.current, event.t)
            self.run_workloads[event.run_id] = event.workload
            self.lanes = max(self.lanes, len(self.running))
            self.run_started_t = event.t
            workload = () if event.workload == "infer" else (event.workload,)
            self.run_names[event.run_id] = " · ".join(
                (model_label(event.model), event.technique, *workload, self.current.input_size))
        elif isinstance(event, PhaseChanged):
            if event.run_id in self.running:
                going, started_t = self.running[event.run_id]
                self.running[event.run_id] = (_with_phase(going, _phase_label(event)), started_t)
            if self.current is not None and self.current.run_id == event.run_id:
                self.current = _with_phase(self.current, _phase_label(event))
        elif isinstance(event, (RunFinished, RunSkipped, RunFailed)):
            self._run_ended(event)
        elif isinstance(event, Notice):
            if event.level != "info":
                run = f"{self.run_names.get(event.run_id, event.run_id)}: " if event.run_id else ""
                self._log(f"{event.level}: {run}{event.message}")
        elif isinstance(event, SessionFinished):
            self.finished_status = event.status
            self.message = event.message
            self.current = None
            self.running.clear()

    def _run_ended(self, event: RunFinished | RunSkipped | RunFailed) -> None:
        self.ended_in_tail[event.run_id] = (
            "finished" if isinstance(event, RunFinished)
            else "skipped" if isinstance(event, RunSkipped) else "failed")
        if isinstance(event, RunFinished):
            self.counts["finished"] += 1
            self.event_records[event.run_id] = RunRecord.from_dict(event.row)
        elif isinstance(event, RunSkipped):
            self.counts["skipped"] += 1
            self._log(f"skipped {event.run_id}: {event.reason}")
        else:
            self.counts["failed"] += 1
            self._log(f"FAILED {event.run_id}: {event.reason}")
        ended = self.running.pop(event.run_id, None)
        if ended is not None:
            workload = self.run_workloads.get(event.run_id, "infer")
            self.run_durations_s.setdefault(workload, []).append(event.t - ended[1])
        if self.current is not None and self.current.run_id == event.run_id:
            # another run still in progress (lanes) becomes the one shown
            last = list(self.running.values())[-1] if self.running else None
            self.current = last[0] if last else None
            self.run_started_t = last[1] if last else None

    def _log(self, line: str) -> None:
        self.log.append(line)
        self.log_total += 1

    def add_sample_line(self, line: str) -> bool:
        """Fold one samples.csv row in; False when it does not read (it is left out)."""
        parts = line.split(",")
        if parts[0] == "t" or not line.strip():
            return True
        if len(parts) != 4:
            return False
        try:
            t = float(parts[0])
            watts = float(parts[2]) if parts[2] else None
            joules = float(parts[3]) if parts[3] else None
        except ValueError:
            return False
        trace = self.traces.get(parts[1])
        if trace is None:
            trace = self.traces[parts[1]] = SensorTrace(parts[1])
        trace.add(t, watts, joules)
        return True

    def _eta(self, now: float, ended: int) -> tuple[float | None, float | None]:
        """(seconds left, how far off in %): each workload's runs left × its mean measured run
        time (over the lanes), less the time the running run has had; the spread of the
        measured times says how rough it is (None while a workload left has no timed run)."""
        measured = [d for durations in self.run_durations_s.values() for d in durations]
        if not measured or not self.total_runs:
            return None, None
        done = Counter(self.run_workloads[r] for r in self.ended_in_tail if r in self.run_workloads)
        left = {w: max(0, n - done[w]) for w, n in (self.planned or {"infer": 0}).items()}
        scale = (self.total_runs - ended) / (sum(left.values()) or 1)  # skips never started
        overall = sum(measured) / len(measured)
        seconds = sum(n * scale * statistics.fmean(self.run_durations_s.get(w, [overall]))
                      for w, n in left.items()) if sum(left.values()) else \
            overall * (self.total_runs - ended)
        running_s = now - self.run_started_t if self.current and self.run_started_t else 0.0
        untimed = any(n and w not in self.run_durations_s for w, n in left.items())
        rough = None if untimed or len(measured) < 2 else \
            100 * statistics.stdev(measured) / overall
        return max(0.0, seconds / self.lanes - running_s), rough

    # ---------------------------------------------------------------- output
    def snapshot(self, now: float, runner_alive: bool | None) -> LiveSnapshot:
        started_t = self._started_t()
        status = self._status(runner_alive, started_t)
        end = now if status in ("waiting", "running") else (self.last_t or now)
        elapsed = end - started_t if started_t is not None else 0.0
        records = self._records()
        counts = self._counts(records)
        ended = sum(counts.values())
        eta, rough = (None, None) if status != "running" else self._eta(now, ended)
        return LiveSnapshot(
            path=self.path,
            status=status,
            sensors=self._sensor_views(),
            total_runs=self.total_runs,
            finished=counts["finished"],
            skipped=counts["skipped"],
            failed=counts["failed"],
            elapsed_s=elapsed,
            eta_s=eta,
            eta_rough_pct=rough,
            current=self.current,
            runs=tuple(records),
            log=tuple(self.log),
            log_total=self.log_total,
            message=self.message,
            info=dict(self.info),
            problems=tuple(self.problems.values()),
            running=tuple(run for run, _ in self.running.values()),
        )

    def _started_t(self) -> float | None:
        if self.started_t is not None or not self.events_skipped_bytes:
            return self.started_t
        started = self.info.get("started_at")  # SessionStarted is in the part not read
        return float(started) if isinstance(started, (int, float)) else self.last_t

    def _counts(self, records: list[RunRecord]) -> dict[str, int]:
        """Runs ended so far by status: folded from the events, or, where the start of
        events.jsonl was not read, runs.csv's rows plus runs ended in the tail it lacks."""
        if not self.events_skipped_bytes:
            return self.counts
        counts = dict.fromkeys(self.counts, 0)
        for record in records:
            counts[record.status] = counts.get(record.status, 0) + 1
        csv_ids = {r.run_id for r in self.csv_records}
        for run_id, status in self.ended_in_tail.items():
            if run_id not in csv_ids and status != "finished":  # finished ones are in records
                counts[status] += 1
        return counts

    def _status(self, runner_alive: bool | None, started_t: float | None) -> str:
        if self.finished_status:
            return self.finished_status
        if runner_alive is False:
            return "runner gone"
        return "running" if started_t is not None else "waiting"

    def _sensor_views(self) -> tuple[SensorView, ...]:
        described = {s.get("name"): s for s in self.info.get("sensors", [])}
        names = list(described) + [n for n in self.traces if n not in described]
        views = []
        for name in names:
            about = described.get(name, {})
            trace = self.traces.get(name) or SensorTrace(name)
            idle = self.idle_w.get(name)
            if idle is None:
                idle = (self.info.get("idle_power_w") or {}).get(name)
            views.append(trace.view(about.get("kind", "?"), bool(about.get("measured")), idle))
        return tuple(views)

    def _records(self) -> list[RunRecord]:
        """runs.csv's records, and finished runs whose row it does not hold yet."""
        records = {r.run_id: r for r in self.csv_records}
        for run_id, record in self.event_records.items():
            records.setdefault(run_id, record)
        return list(records.values())


def _phase_label(event: PhaseChanged) -> str:
    if event.phase == "repeat" and event.repeat is not None:
        if event.repeats and event.repeat > event.repeats:  # measuring until good enough
            reached = ("" if event.energy_ci_pct is None
                       else f" · ±{event.energy_ci_pct:.1f} %")
            target = "" if event.target_ci_pct is None else f" of ±{event.target_ci_pct:g} %"
            return f"repeat {event.repeat}{reached}{target}"
        return f"repeat {event.repeat} of {event.repeats or '?'}"
    if event.phase == "train" and event.repeat is not None:
        return f"training window {event.repeat} of {event.repeats or '?'}"
    if event.phase == "train-step" and event.step is not None:
        loss = f" · loss {event.loss:.4g}" if event.loss is not None else ""
        return f"training step {event.step} of {event.steps or '?'}{loss}"
    label = PHASE_LABELS.get(event.phase, event.phase)
    return f"{label}: {event.detail}" if event.detail else label


def _with_phase(run: CurrentRun, phase: str) -> CurrentRun:
    return dataclasses.replace(run, phase=phase)

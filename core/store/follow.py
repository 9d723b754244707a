"""Reading a session directory, live or finished: the one reader every view uses.

`SessionReader` reads what was appended to events.jsonl and samples.csv since its last look (in
bounded chunks, so attaching to a long session keeps memory flat), folds it into a `SessionModel`,
and gives frozen `LiveSnapshot`s: the console's live view polls it from a thread, `report` and
`read_session` read a finished session to its end. Run ids stay opaque: runs are typed records
that carry model, technique and input size as fields.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from collections import deque
from pathlib import Path
from typing import Any

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
    event_from_json,
)
from energy_console.core.store.file_tail import MAX_LINE_BYTES, FileTail, note_line
from energy_console.core.store.records import RunRecord, input_label, model_label
from energy_console.core.store.session_dir import _line_problem, read_runs
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
        self.run_durations_s: list[float] = []
        self.counts = {"finished": 0, "skipped": 0, "failed": 0}
        self.finished_status: str | None = None
        self.message = ""
        self.event_records: dict[str, RunRecord] = {}
        self.csv_records: list[RunRecord] = []
        self.log: deque[str] = deque(maxlen=LOG_LINES)
        self.log_total = 0
        self.run_names: dict[str, str] = {}  # run id -> "tiny-bert-random · bf16 · b1-s64"
        self.problems: dict[str, str] = {}  # by file: what could not be read

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
        elif isinstance(event, IdleBaseline):
            self.idle_w.update(event.power_w)
        elif isinstance(event, RunStarted):
            self.total_runs = max(self.total_runs, event.total)
            where = "" if event.gpu_index is None else f"{event.node}/gpu{event.gpu_index}"
            self.current = CurrentRun(
                event.run_id, event.index, event.total, event.model, event.technique,
                input_label(event.batch_size, event.seq_len, event.resolution), "starting",
                where)
            self.running[event.run_id] = (self.current, event.t)
            self.lanes = max(self.lanes, len(self.running))
            self.run_started_t = event.t
            self.run_names[event.run_id] = " · ".join(
                (model_label(event.model), event.technique, self.current.input_size))
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
            self.run_durations_s.append(event.t - ended[1])
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

    # ---------------------------------------------------------------- output
    def snapshot(self, now: float, runner_alive: bool | None) -> LiveSnapshot:
        status = self._status(runner_alive)
        end = now if status in ("waiting", "running") else (self.last_t or now)
        elapsed = end - self.started_t if self.started_t is not None else 0.0
        ended = sum(self.counts.values())
        eta = None
        if status == "running" and self.run_durations_s and self.total_runs:
            mean_s = sum(self.run_durations_s) / len(self.run_durations_s)
            running_s = now - self.run_started_t if self.current and self.run_started_t else 0.0
            eta = max(0.0, mean_s * (self.total_runs - ended) / self.lanes - running_s)
        return LiveSnapshot(
            path=self.path,
            status=status,
            sensors=self._sensor_views(),
            total_runs=self.total_runs,
            finished=self.counts["finished"],
            skipped=self.counts["skipped"],
            failed=self.counts["failed"],
            elapsed_s=elapsed,
            eta_s=eta,
            current=self.current,
            runs=tuple(self._records()),
            log=tuple(self.log),
            log_total=self.log_total,
            message=self.message,
            info=dict(self.info),
            problems=tuple(self.problems.values()),
            running=tuple(run for run, _ in self.running.values()),
        )

    def _status(self, runner_alive: bool | None) -> str:
        if self.finished_status:
            return self.finished_status
        if runner_alive is False:
            return "runner gone"
        return "running" if self.started_t is not None else "waiting"

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
        return f"repeat {event.repeat} of {event.repeats or '?'}"
    if event.phase == "train" and event.repeat is not None:
        return f"training window {event.repeat} of {event.repeats or '?'}"
    if event.phase == "train-step" and event.step is not None:
        loss = f" · loss {event.loss:.4g}" if event.loss is not None else ""
        return f"training step {event.step} of {event.steps or '?'}{loss}"
    return PHASE_LABELS.get(event.phase, event.phase)


def _with_phase(run: CurrentRun, phase: str) -> CurrentRun:
    return dataclasses.replace(run, phase=phase)


def process_alive(pid: int | None) -> bool | None:
    """Whether pid runs (a zombie counts as ended); None when unknown."""
    if not pid:
        return None
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            return f.read().rpartition(")")[2].split()[0] not in ("Z", "X")
    except FileNotFoundError:
        return False
    except OSError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True


class SessionReader:
    """Reads what is new in a session directory into a SessionModel (no thread, no UI).

    A file that does not read (not UTF-8, cut short, broken JSON, missing) never stops it: what
    reads is shown, and snapshot().problems says what was left out and why."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.model = SessionModel(self.path)
        self._events = FileTail(self.path / "events.jsonl")
        self._samples = FileTail(self.path / "samples.csv")
        self._runs_stamp: tuple[int, int] | None = None
        self._info_stamp: tuple[int, int] | None = None
        self._bad_events: list[str] = []
        self._bad_event_count = 0
        self._bad_sample_lines: list[int] = []
        self._bad_sample_count = 0

    def read_some(self) -> bool:
        """Read one bounded chunk of each file; True when more is already waiting."""
        self._read_info()
        lines, more_events = self._events.read_lines()
        first = self._events.lines - len(lines) + 1
        for number, line in enumerate(lines, start=first):
            if line.strip():
                try:
                    self.model.add_event(event_from_json(line))
                except Exception as exc:  # noqa: BLE001 - a broken line: the rest still reads
                    self._bad_event_count += 1
                    if len(self._bad_events) < 3:
                        self._bad_events.append(f"line {number}: {_line_problem(exc)}")
        lines, more_samples = self._samples.read_lines()
        first = self._samples.lines - len(lines) + 1
        for number, line in enumerate(lines, start=first):
            if not self.model.add_sample_line(line):
                self._bad_sample_count += 1
                note_line(self._bad_sample_lines, number)
        self._read_runs()
        self._note_line_problems()
        more = more_events or more_samples
        if not more and (self.model.finished_status or self.snapshot().status == "runner gone"):
            self.finish()  # nothing more will come: say what is missing or cut short
        return more

    def snapshot(self) -> LiveSnapshot:
        pid = _as_pid(self.model.info.get("runner_pid"))
        return self.model.snapshot(time.time(), process_alive(pid))

    def finish(self) -> None:
        """After the last read of an ended session: what is missing or cut short at the end."""
        model, path = self.model, self.path
        for tail in (self._events, self._samples):
            if tail.partial_bytes:
                model.set_problem(f"{tail.path.name} end", (
                    f"{tail.path.name}: the last line is cut short ({tail.partial_bytes} bytes "
                    "without a newline; the runner stopped mid-write?) and is left out"))
        started = model.started_t is not None
        if not (path / "events.jsonl").is_file():
            model.set_problem("events.jsonl missing", (
                "events.jsonl is missing: progress, notices and reasons are unknown; runs are "
                "shown from runs.csv"))
        if started and not (path / "session.json").is_file():
            model.set_problem("session.json", (
                "session.json is missing: host, library versions and idle power are unknown"))
        if started and not (path / "samples.csv").is_file():
            model.set_problem("samples.csv missing", (
                "samples.csv is missing: no power traces (energy figures are in runs.csv)"))
        if model.event_records and not (path / "runs.csv").is_file():
            model.set_problem("runs.csv", (
                "runs.csv is missing: finished runs are shown from events.jsonl; rerun "
                f"`energy-console run --resume {path}` to write it again"))

    def _note_line_problems(self) -> None:
        for tail, count, where, what in (
            (self._events, self._bad_event_count, self._bad_events, "line"),
            (self._samples, self._bad_sample_count,
             [f"line {n}" for n in self._bad_sample_lines], "row"),
        ):
            parts = []
            if count:
                parts.append(f"{count} {what}(s) unreadable and left out ("
                             f"{'; '.join(where)}{'; ...' if count > len(where) else ''})")
            if tail.not_utf8:
                parts.append("bytes that are not UTF-8 at line(s) "
                             + ", ".join(map(str, tail.not_utf8)))
            if tail.too_long:
                parts.append(f"line(s) over {MAX_LINE_BYTES} bytes dropped: "
                             + ", ".join(map(str, tail.too_long)))
            if parts:
                self.model.set_problem(tail.path.name, f"{tail.path.name}: " + "; ".join(parts))

    def _read_info(self) -> None:
        file = self.path / "session.json"
        stamp = _stamp(file)
        if stamp is None or stamp == self._info_stamp:
            return
        self._info_stamp = stamp  # written atomically: what is there is what there is
        try:
            info = json.loads(file.read_bytes().decode("utf-8"))
            if not isinstance(info, dict):
                raise ValueError(f"a JSON {type(info).__name__}, not an object")
        except (OSError, ValueError) as exc:
            reason = _line_problem(exc) if isinstance(exc, ValueError) else exc.strerror
            self.model.set_problem("session.json", (
                f"session.json does not read ({reason}): host, library versions and idle power "
                "are unknown; the rest of the session is shown"))
            return
        wrong = [key for key, kind in INFO_TYPES.items()
                 if key in info and info[key] is not None and not isinstance(info[key], kind)]
        for key in wrong:
            del info[key]
        if isinstance(info.get("sensors"), list):
            info["sensors"] = [s for s in info["sensors"] if isinstance(s, dict)]
        self.model.set_problem("session.json", (
            f"session.json: {', '.join(wrong)} of the wrong type, left out") if wrong else None)
        self.model.info.update(info)
        self.model.total_runs = max(self.model.total_runs, info.get("total_runs") or 0)

    def _read_runs(self) -> None:
        stamp = _stamp(self.path / "runs.csv")
        if stamp is not None and stamp != self._runs_stamp:
            self._runs_stamp = stamp
            problems: list[str] = []
            self.model.csv_records = read_runs(self.path, problems)
            self.model.set_problem("runs.csv", "; ".join(problems) or None)


# session.json keys the views use, and the type each must have to be used
INFO_TYPES: dict[str, type | tuple[type, ...]] = {
    "sensors": list, "idle_power_w": dict, "runner_pid": int, "total_runs": int,
    "started_at": (int, float), "ended_at": (int, float), "status": str,
}


def _as_pid(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def _stamp(path: Path) -> tuple[int, int] | None:
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    return (stat.st_mtime_ns, stat.st_size)


def read_session(path: Path) -> LiveSnapshot:
    """A session directory read to its end (for `report`, `compare` and notebooks)."""
    path = Path(path)
    if not (path / "events.jsonl").exists() and not (path / "session.json").exists():
        raise FileNotFoundError(f"{path} is not a session directory (no events.jsonl)")
    reader = SessionReader(path)
    while reader.read_some():
        pass
    reader.finish()
    return reader.snapshot()

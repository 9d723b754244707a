"""Reading a session directory, live or finished: the one reader every view uses.

`SessionReader` reads what was appended to events.jsonl and samples.csv since its last look (in
bounded chunks, so attaching to a long session keeps memory flat), folds it into a
`SessionModel` (session_model.py) and gives frozen `LiveSnapshot`s: the console's live view
polls it from a thread, `report` and `read_session` read a finished session to its end. Run ids
stay opaque: runs are typed records that carry model, technique and input size as fields.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from energy_console.core.store.events import event_from_json
from energy_console.core.store.file_tail import MAX_LINE_BYTES, FileTail, note_line
from energy_console.core.store.session_dir import _line_problem, read_runs, write_json
from energy_console.core.store.session_model import SessionModel
from energy_console.core.store.snapshot import LiveSnapshot
from energy_console.core.store.summary import (
    COVERED,
    SUMMARY_NAME,
    covered_lines,
    file_stamp,
    read_summary,
    restore,
    summary_of,
)

# A view reads only the last this many bytes of a longer events.jsonl: the log's last lines and
# the runs in progress are there; counts and finished runs come from runs.csv, the start, the
# total and idle power from session.json. A big session opens in well under a second.
EVENTS_TAIL_BYTES = 4 << 20  # over MAX_LINE_BYTES: a junk line at the end is still named


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

    def __init__(self, path: Path, events_tail_bytes: int = EVENTS_TAIL_BYTES,
                 use_summary: bool = True):
        self.path = Path(path)
        self._use_summary = use_summary
        self.model = SessionModel(self.path)
        self._events = FileTail(self.path / "events.jsonl")
        self._events_tail_bytes = events_tail_bytes
        self._first_read = True
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
        if self._first_read:
            self._first_read = False
            if not self._start_from_summary():
                skipped = self._events.start_at_tail(self._events_tail_bytes)
                self.model.events_skipped_bytes = skipped
        where = "line" if not self.model.events_skipped_bytes else "line (of the tail read)"
        lines, more_events = self._events.read_lines()
        first = self._events.lines - len(lines) + 1
        for number, line in enumerate(lines, start=first):
            if line.strip():
                try:
                    self.model.add_event(event_from_json(line))
                except Exception as exc:  # noqa: BLE001 - a broken line: the rest still reads
                    self._bad_event_count += 1
                    if len(self._bad_events) < 3:
                        self._bad_events.append(f"{where} {number}: {_line_problem(exc)}")
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

    def _start_from_summary(self) -> bool:
        """A finished session with a summary.json that covers its files as they are: the model
        starts from it and the reads go on after what it covers (nothing, unless appended)."""
        if not self._use_summary or self.model.problems:  # session.json's problem goes first
            return False
        data = read_summary(self.path)
        if data is None or not restore(self.model, data):
            return False
        for tail in (self._events, self._samples):
            size = data["covered"][tail.path.name][0]
            tail.start_after(size, covered_lines(data, tail.path.name))
        return True

    def summary(self, stamps: dict[str, tuple[int, int] | None]) -> dict[str, Any] | None:
        """summary.json's content after a read to the end of a finished session whose COVERED
        files have `stamps` (file_stamp); None unless the read was clean: the session finished,
        nothing in progress, no problem, no line cut short."""
        model, tails = self.model, {t.path.name: t for t in (self._events, self._samples)}
        if (not model.finished_status or model.problems or model.running or model.current
                or any(t.partial_bytes for t in tails.values())):
            return None
        covered = {}
        for name, stamp in stamps.items():
            if stamp is None:
                return None
            covered[name] = (*stamp, tails[name].lines)
        return summary_of(model, covered)

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
        started = model.started_t is not None or model.events_skipped_bytes > 0
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
        stamp = file_stamp(file)
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
        stamp = file_stamp(self.path / "runs.csv")
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


def read_session(path: Path) -> LiveSnapshot:
    """A session directory read to its end (for `report`, `compare` and notebooks): its
    session.json, runs.csv and samples.csv, and the last EVENTS_TAIL_BYTES of events.jsonl."""
    path = Path(path)
    if not (path / "events.jsonl").exists() and not (path / "session.json").exists():
        raise FileNotFoundError(f"{path} is not a session directory (no events.jsonl)")
    reader = SessionReader(path)
    while reader.read_some():
        pass
    reader.finish()
    return reader.snapshot()


def write_summary(path: Path) -> bool:
    """At a session's end: read it as a view does and keep what that gives in summary.json, so
    views open it without reading events.jsonl or samples.csv. Written only when the read is
    clean (the session finished, every line read, nothing in progress); True when written."""
    path = Path(path)
    before = {name: file_stamp(path / name) for name in COVERED}
    reader = SessionReader(path, use_summary=False)
    while reader.read_some():
        pass
    reader.finish()
    after = {name: file_stamp(path / name) for name in COVERED}
    summary = reader.summary(after) if before == after else None
    if summary is None:
        return False
    try:
        write_json(path / SUMMARY_NAME, summary)
    except OSError:  # no room: views read the files themselves
        return False
    return True

"""summary.json: what a finished session's views fold from events.jsonl and samples.csv, kept once.

The runner writes it when a session ends (follow.write_summary reads the session as a view would
and keeps the reader's state). A view then opens the session from session.json, runs.csv and this
file, reading neither events.jsonl nor samples.csv: a million-line session opens as fast as a
small one. The summary names the size and modification time of the two files it covers; when
either differs (a resumed session appended to them, a copy without its times), views read the
files as before. It is data like the rest of the session folder: anything that does not read as
expected is ignored, and its text goes through the same escaping as the rest of a view's text.
"""

from __future__ import annotations

import json
from collections import deque
from pathlib import Path
from typing import Any

from energy_console.core.store.records import RunRecord
from energy_console.core.store.session_model import LOG_LINES, SessionModel
from energy_console.core.store.snapshot import SensorTrace

SUMMARY_NAME = "summary.json"
SUMMARY_VERSION = 2  # 2: run durations and planned runs by workload
COVERED = ("events.jsonl", "samples.csv")


def file_stamp(path: Path) -> tuple[int, int] | None:
    """(size, modification time in ns) of a file; None when it is not there."""
    try:
        stat = path.stat()
    except OSError:
        return None
    return (stat.st_size, stat.st_mtime_ns)


def summary_of(model: SessionModel, covered: dict[str, tuple[int, int, int]]) -> dict[str, Any]:
    """The model of a finished, fully read session as JSON-ready data; `covered` holds each
    COVERED file's (size, mtime in ns, lines read)."""
    return {
        "version": SUMMARY_VERSION,
        "covered": {name: list(stamp) for name, stamp in covered.items()},
        "info": model.info,
        "traces": [trace.state() for trace in model.traces.values()],
        "idle_w": model.idle_w,
        "total_runs": model.total_runs,
        "started_t": model.started_t,
        "last_t": model.last_t,
        "lanes": model.lanes,
        "run_durations_s": model.run_durations_s,
        "planned": model.planned,
        "counts": model.counts,
        "finished_status": model.finished_status,
        "message": model.message,
        "event_records": [record.as_dict() for record in model.event_records.values()],
        "log": list(model.log),
        "log_total": model.log_total,
        "run_names": model.run_names,
        "events_skipped_bytes": model.events_skipped_bytes,
        "ended_in_tail": model.ended_in_tail,
    }


def read_summary(path: Path) -> dict[str, Any] | None:
    """A session's summary.json when it covers its events.jsonl and samples.csv as they are now;
    None otherwise (missing, unreadable, another version, or the files changed since)."""
    try:
        data = json.loads((path / SUMMARY_NAME).read_bytes().decode("utf-8"))
        if data.get("version") != SUMMARY_VERSION:
            return None
        for name in COVERED:
            size, mtime_ns, _lines = data["covered"][name]
            if file_stamp(path / name) != (size, mtime_ns):
                return None
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return None
    return data


def restore(model: SessionModel, data: dict[str, Any]) -> bool:
    """Fold a summary (read_summary's) into a model that has read only session.json so far;
    False, and the model untouched, when the summary does not hold what it should."""
    try:
        status = data["finished_status"]
        if not isinstance(status, str) or not status:
            return False
        traces = {str(s["name"]): SensorTrace.from_state(s) for s in data["traces"]}
        records = [RunRecord.from_dict(row) for row in data["event_records"]]
        fields = {
            "idle_w": {str(k): float(v) for k, v in data["idle_w"].items()},
            "started_t": _optional_float(data["started_t"]),
            "last_t": _optional_float(data["last_t"]),
            "lanes": int(data["lanes"]),
            "run_durations_s": {str(w): [float(s) for s in durations]
                                for w, durations in data["run_durations_s"].items()},
            "planned": {str(w): int(n) for w, n in data["planned"].items()},
            "counts": {str(k): int(v) for k, v in data["counts"].items()},
            "message": str(data["message"]),
            "log": deque((str(line) for line in data["log"]), maxlen=LOG_LINES),
            "log_total": int(data["log_total"]),
            "run_names": {str(k): str(v) for k, v in data["run_names"].items()},
            "events_skipped_bytes": int(data["events_skipped_bytes"]),
            "ended_in_tail": {str(k): str(v) for k, v in data["ended_in_tail"].items()},
        }
        total_runs = int(data["total_runs"])
        info = dict(data["info"])
    except (TypeError, ValueError, KeyError, AttributeError, IndexError):
        return False
    for key, value in fields.items():
        setattr(model, key, value)
    model.total_runs = max(model.total_runs, total_runs)
    model.traces = traces
    model.event_records = {r.run_id: r for r in records}
    model.finished_status = status
    for key, value in info.items():  # session.json as read now comes first
        model.info.setdefault(key, value)
    return True


def covered_lines(data: dict[str, Any], name: str) -> int:
    return int(data["covered"][name][2])


def _optional_float(value: Any) -> float | None:
    return None if value is None else float(value)


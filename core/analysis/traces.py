"""Power over time from a session's samples.csv: per sensor, watts as read or as the counter's
energy differenced between readings. For plots of a run or of the whole session."""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

from energy_console.core.store.events import RunFailed, RunFinished, RunSkipped, RunStarted
from energy_console.core.store.session_dir import read_events


@dataclass
class PowerTrace:
    sensor: str
    t: list[float] = field(default_factory=list)  # unix seconds
    watts: list[float] = field(default_factory=list)


def power_traces(session_dir: Path, start_t: float | None = None,
                 end_t: float | None = None) -> dict[str, PowerTrace]:
    """Each sensor's power between start_t and end_t (unix s; None: the whole session).
    Unreadable rows are skipped; a missing file gives no traces."""
    traces: dict[str, PowerTrace] = {}
    last: dict[str, tuple[float, float]] = {}
    try:
        with (Path(session_dir) / "samples.csv").open(newline="", encoding="utf-8",
                                                      errors="replace") as f:
            for row in csv.DictReader(f):
                try:
                    t, joules = float(row["t"]), float(row["joules"])
                    watts = float(row["watts"]) if row.get("watts") else None
                except (KeyError, TypeError, ValueError):
                    continue
                sensor = row["sensor"]
                if watts is None and sensor in last and t > last[sensor][0]:
                    watts = (joules - last[sensor][1]) / (t - last[sensor][0])
                last[sensor] = (t, joules)
                if watts is None or (start_t is not None and t < start_t) or (
                        end_t is not None and t > end_t):
                    continue
                trace = traces.setdefault(sensor, PowerTrace(sensor))
                trace.t.append(t)
                trace.watts.append(watts)
    except OSError:
        return {}
    return traces


def run_span(session_dir: Path, run_id: str) -> tuple[float, float] | None:
    """(start, end) unix seconds of a run, from its run_started and ending events."""
    start = end = None
    for event in read_events(Path(session_dir)):
        if isinstance(event, RunStarted) and event.run_id == run_id:
            start = event.t
        elif isinstance(event, (RunFinished, RunSkipped, RunFailed)) and event.run_id == run_id:
            end = event.t
    return (start, end) if start is not None and end is not None else None

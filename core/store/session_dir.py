"""The session directory: the interface between the runner and every view of a session.

results/<UTC timestamp>_<profile name>/
  profile.yaml        the profile as run
  session.json        host, library versions, sensors found and missing, runner pid, start/end
  events.jsonl        append-only, one event per line, flushed per event
  samples.csv         t (unix s), sensor, watts, joules (cumulative since session start)
  runs.csv            one row per ended run, rewritten atomically after each (the runs a stop
                      left unstarted: in one rewrite)
  summary.json        at the session's end: what views fold from events.jsonl and samples.csv
                      (store/summary.py), so a finished session opens without reading them
  control             commands from a view to the runner: "stop", "cancel RUN_ID" (one per line;
                      anything else is ignored with a notice, and so is a control that is no
                      regular file)
  runner.log          the runner's own output
  runs/<run id>/      result.json, latency.csv, worker.log
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import os
import re
import time
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the writer's types: views that read a session never import figures
    from energy_console.core.store.events import Event
    from energy_console.core.store.figures import RunFigures, WorkerResult
    from energy_console.core.store.records import RunRecord

SAMPLE_COLUMNS = ("t", "sensor", "watts", "joules")
RESULTS_ENV = "ENERGY_CONSOLE_RESULTS_DIR"


def default_results_root() -> Path:
    return Path(os.environ.get(RESULTS_ENV) or "results")


# A file name every file system takes and no shell or tool misreads: it never starts with a dot
# or a dash, holds no separator, NUL, space or control character, and fits NAME_MAX (255 bytes).
SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]*", re.ASCII)
MAX_NAME_BYTES = 200  # leaves room under NAME_MAX (255) for ".NAME.tmp" beside it
HASH_CHARS = 8


def name_hash(text: str) -> str:
    """A short stable hash of text (any str, lone surrogates included)."""
    import hashlib  # OpenSSL's, loaded by the first name that needs it: not at the console's start

    data = text.encode("utf-8", "surrogatepass")
    return hashlib.sha256(data).hexdigest()[:HASH_CHARS]


def safe_name(text: str, fallback: str = "x", max_bytes: int = MAX_NAME_BYTES) -> str:
    """text as one safe path component: unchanged where it already is one, else a readable slug
    plus a short hash of text (so two names that slug alike stay apart). Never empty, never `.`
    or `..`, no `/` or NUL, at most max_bytes bytes of ASCII."""
    if SAFE_NAME.fullmatch(text) and len(text) <= max_bytes:
        return text
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    slug = re.sub(r"[^A-Za-z0-9._+-]+", "-", ascii_text, flags=re.ASCII)
    slug = slug.lstrip("._+-") or fallback
    slug = slug[:max_bytes - HASH_CHARS - 1].rstrip("._+-") or fallback
    return f"{slug}-{name_hash(text)}"


def is_safe_name(name: str) -> bool:
    return bool(SAFE_NAME.fullmatch(name)) and len(name) <= MAX_NAME_BYTES


def session_dir_name(profile_name: str, when: float | None = None) -> str:
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(when or time.time()))
    return f"{stamp}_{safe_name(profile_name, fallback='session')}"


def atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with tmp.open("w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
    except OSError:  # a full disk: leave no half-written temporary file taking space
        tmp.unlink(missing_ok=True)
        raise
    tmp.replace(path)


def write_json(path: Path, data: Any) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, default=str) + "\n")


def _csv_field(text: str) -> str:
    """text as csv.writer writes a field (quoted where it has a comma, quote or line break)."""
    if {",", '"', "\r", "\n"}.isdisjoint(text):
        return text
    return '"' + text.replace('"', '""') + '"'


class SessionWriter:
    """What the runner writes. Every write is flushed, so a view sees it at once."""

    def __init__(self, path: Path):
        self.path = path
        self.runs_path = path / "runs"
        self.runs_path.mkdir(parents=True, exist_ok=True)
        self._events = (path / "events.jsonl").open("a", encoding="utf-8")
        new_samples = not (path / "samples.csv").exists()
        self._samples = (path / "samples.csv").open("a", encoding="utf-8", newline="")
        self._sample_writer = csv.writer(self._samples)
        if new_samples:
            self._sample_writer.writerow(SAMPLE_COLUMNS)
            self._samples.flush()
        self._records: dict[str, RunRecord] = {r.run_id: r for r in read_runs(path)}
        self._quoted_names: dict[str, str] = {}  # sensor name -> its csv field

    def append_event(self, event: Event) -> None:
        self.append_events((event,))

    def append_events(self, events: Sequence[Event]) -> None:
        """Events in one write and one flush (a stopped session's unstarted runs, thousands)."""
        self._events.write("".join(event.to_json() + "\n" for event in events))
        self._events.flush()

    def append_samples(
        self, rows: Iterable[tuple[float, str, float | None, float]], t_offset_s: float = 0.0
    ) -> None:
        """One write per batch of (t, sensor, watts, joules) rows, t + t_offset_s written as the
        time (a sampler's monotonic times made wall-clock times without a copy of each row).
        Formatted here as csv.writer would, at a third of its cost (each sensor's name quoted
        once)."""
        quoted, lines = self._quoted_names, list[str]()
        append = lines.append
        for t, sensor, watts, joules in rows:
            name = quoted.get(sensor)
            if name is None:
                name = quoted[sensor] = _csv_field(sensor)
            if watts is None:
                append(f"{t + t_offset_s:.4f},{name},,{joules:.6f}\r\n")
            else:
                append(f"{t + t_offset_s:.4f},{name},{watts:.4f},{joules:.6f}\r\n")
        self._samples.write("".join(lines))
        self._samples.flush()

    def run_dir(self, run_id: str) -> Path:
        """runs/<run_id>/, created; refused unless it is one safe name that resolves inside the
        session directory (run ids come from core.plan, which makes them so)."""
        if not is_safe_name(run_id):
            raise ValueError(f"run id {run_id!r} is not a safe folder name (letters, digits, "
                             f". _ + -, up to {MAX_NAME_BYTES} bytes); build run ids with "
                             "core.plan.expand, which makes them so")
        path = self.runs_path / run_id
        runs = self.runs_path.resolve()
        if not runs.is_relative_to(self.path.resolve()) or path.resolve().parent != runs:
            raise ValueError(f"{path} resolves to {path.resolve()}, outside the session "
                             f"directory {self.path.resolve()}; remove the link that points "
                             "out of it")
        path.mkdir(exist_ok=True)
        return path

    def record_run(self, record: RunRecord) -> None:
        """Add or replace the run's row and rewrite runs.csv atomically."""
        self.record_runs((record,))

    def record_runs(self, records: Sequence[RunRecord]) -> None:
        """Add or replace these runs' rows in one atomic rewrite of runs.csv; the rows are kept
        in memory only once the file holds them."""
        rows = {**self._records, **{r.run_id: r for r in records}}
        from energy_console.core.store.records import RUN_COLUMNS

        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(RUN_COLUMNS)
        writer.writerows(r.csv_cells() for r in rows.values())
        atomic_write_text(self.path / "runs.csv", buffer.getvalue())
        self._records = rows

    def write_result(self, record: RunRecord, figures: RunFigures, result: WorkerResult,
                     extra: dict[str, Any]) -> None:
        """runs/<id>/result.json: the row, and the details behind it (per sensor, per repeat,
        quality, dtype mix), plus what the runner adds in `extra`."""
        write_json(self.run_dir(record.run_id) / "result.json", {
            "row": record.as_dict(),
            "per_sensor": {n: dataclasses.asdict(f) for n, f in figures.per_sensor.items()},
            "repeats": [dataclasses.asdict(r) for r in figures.per_repeat],
            "quality": result.quality.to_dict(),
            "reference": {"seconds": result.reference_seconds,
                          "cache_hit": result.reference_cache_hit},
            "dtype_bytes": result.dtype_bytes,
            "torch_threads": result.torch_threads,
            **extra,
        })

    def write_profile(self, text: str, keep_previous: bool) -> None:
        """profile.yaml; with keep_previous, one already there becomes
        profile.before-resume-N.yaml (a session resumed with a changed profile keeps both)."""
        target = self.path / "profile.yaml"
        if keep_previous and target.exists():
            n = 1
            while (self.path / f"profile.before-resume-{n}.yaml").exists():
                n += 1
            target.replace(self.path / f"profile.before-resume-{n}.yaml")
        target.write_text(text, encoding="utf-8")

    def update_info(self, fields: dict[str, Any], first: Callable[[], dict[str, Any]]) -> None:
        """Merge fields into session.json (made from `first()` the first time, with its
        started_at), written atomically."""
        path = self.path / "session.json"
        info = json.loads(path.read_text(encoding="utf-8")) if path.exists() else first()
        info.update(fields)
        info.setdefault("started_at", time.time())
        write_json(path, info)

    def write_latencies(self, run_id: str, latencies_ms: Sequence[Sequence[float]]) -> None:
        """runs/<id>/latency.csv: every timed iteration of every repeat."""
        lines = ["repeat,iteration,latency_ms"]
        for r, repeat in enumerate(latencies_ms, start=1):
            lines += [f"{r},{i},{x:.4f}" for i, x in enumerate(repeat, start=1)]
        atomic_write_text(self.run_dir(run_id) / "latency.csv", "\n".join(lines) + "\n")

    def close(self) -> None:
        self._events.close()
        self._samples.close()


# --------------------------------------------------------------------------------------- reading


def read_events(path: Path, problems: list[str] | None = None) -> list[Event]:
    """events.jsonl as typed events. Lines that do not read (not UTF-8, cut short, from a newer
    version) are left out; where `problems` is given, what was left out is added to it."""
    from energy_console.core.store.events import event_from_json

    file = path / "events.jsonl"
    try:
        data = file.read_bytes()
    except FileNotFoundError:
        return []
    except OSError as exc:
        _problem(problems, f"{file} cannot be read ({exc.strerror}); no events are shown")
        return []
    events, bad = [], []
    for number, raw in enumerate(data.split(b"\n"), start=1):
        if not raw.strip():
            continue
        try:
            events.append(event_from_json(raw.decode("utf-8")))
        except Exception as exc:  # noqa: BLE001 - any broken line is left out, the rest reads
            bad.append(f"line {number}: {_line_problem(exc)}")
    if bad:
        _problem(problems, f"{file.name}: {len(bad)} line(s) unreadable and left out "
                 f"({'; '.join(bad[:3])}{'; ...' if len(bad) > 3 else ''})")
    return events


def read_runs(path: Path, problems: list[str] | None = None) -> list[RunRecord]:
    """runs.csv as typed records (a one-line `pandas.read_csv` reads it too). Rows that do not
    read (cut short, bad values) are left out; where `problems` is given, it says which."""
    from energy_console.core.store.records import RunRecord

    file = path / "runs.csv"
    try:
        data = file.read_bytes()
    except FileNotFoundError:
        return []
    except OSError as exc:
        _problem(problems, f"{file} cannot be read ({exc.strerror}); runs are shown from "
                 "events.jsonl")
        return []
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        text = data.decode("utf-8", errors="replace")
        _problem(problems, f"{file.name}: bytes that are not UTF-8 at byte {exc.start} "
                 "(shown as \N{REPLACEMENT CHARACTER})")
    records, bad = [], []
    reader = csv.DictReader(io.StringIO(text, newline=""))
    try:
        for row in reader:
            if None in row or None in row.values():  # more or fewer cells than the header
                cells = sum(v is not None for k, v in row.items() if k is not None)
                cells += len(row.get(None) or ())
                bad.append(f"line {reader.line_num}: {cells} of "
                           f"{len(reader.fieldnames or ())} cells (cut short?)")
                continue
            try:
                records.append(RunRecord.from_dict(row))
            except Exception as exc:  # noqa: BLE001 - a bad row is left out, the rest reads
                bad.append(f"line {reader.line_num}: {type(exc).__name__}: {exc}"[:200])
    except csv.Error as exc:
        bad.append(f"line {reader.line_num}: {exc}")
    if bad:
        _problem(problems, f"{file.name}: {len(bad)} row(s) unreadable and left out "
                 f"({'; '.join(bad[:3])}{'; ...' if len(bad) > 3 else ''}); runs that finished "
                 "still show from events.jsonl")
    return records


def _line_problem(exc: Exception) -> str:
    if isinstance(exc, UnicodeDecodeError):
        return "not UTF-8 text"
    if isinstance(exc, json.JSONDecodeError):
        return f"not JSON ({exc.msg} at column {exc.colno}; cut short?)"
    if isinstance(exc, KeyError):
        return f"unknown kind {exc} (written by a newer version?)"
    return f"{type(exc).__name__}: {exc}"[:160]


def _problem(problems: list[str] | None, message: str) -> None:
    if problems is not None:
        problems.append(message)


def list_sessions(results_root: Path) -> list[Path]:
    """Session directories under results_root, oldest first."""
    if not results_root.is_dir():
        return []
    return sorted(p for p in results_root.iterdir() if (p / "events.jsonl").exists())


def newest_session(results_root: Path) -> Path | None:
    sessions = list_sessions(results_root)
    return sessions[-1] if sessions else None

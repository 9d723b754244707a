"""A big session opens from its small files and the tail of events.jsonl, never the whole log.

The early part of each events.jsonl here is unreadable garbage, bigger than the tail a view reads:
a view that read the log whole would report those lines as unreadable (and take long on a real
million-line log); one that reads the tail shows the session from runs.csv, session.json and the
last events, with nothing missing."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from types import SimpleNamespace

from energy_console.core.store import events as ev
from energy_console.core.store.follow import (
    EVENTS_TAIL_BYTES,
    SessionReader,
    read_session,
    write_summary,
)
from energy_console.core.store.records import RunRecord
from energy_console.core.store.session_dir import SessionWriter, write_json
from energy_console.core.store.snapshot import LiveSnapshot
from energy_console.tui.follower import SessionFollower
from energy_console.tui.main import main

from tests.test_list_sessions import STARTED_AT, record_ended_run

GARBAGE_LINE = b"\xff\xfe not an event, not UTF-8 {\n"


def energy_console(capsys, *args: str) -> SimpleNamespace:
    """`energy-console ARGS` run by the console script's main in this process: `report` and
    `list` keep nothing between calls, so each reads the session afresh, as a new process would
    (tests/test_cli.py starts the console script itself)."""
    capsys.readouterr()
    code = main(list(args))
    out = capsys.readouterr()
    return SimpleNamespace(returncode=code, stdout=out.out, stderr=out.err)


def write_big_session(path: Path, outcomes: list[str], total: int, status: str | None,
                      runner_pid: int, running: str | None = None) -> Path:
    """A session whose events.jsonl starts with 1 MB of garbage, then more ordinary events (info
    notices) than a view reads from its end, then the events of `outcomes` (each ended run also
    in runs.csv), `running` (a run in progress) and, with a `status`, the session's end."""
    path.mkdir()
    with (path / "events.jsonl").open("wb") as f:
        f.write(GARBAGE_LINE * ((1 << 20) // len(GARBAGE_LINE)))
    writer = SessionWriter(path)
    filler = ev.Notice(level="info", message="progress " + "." * 200, t=STARTED_AT + 0.1)
    for _ in range(EVENTS_TAIL_BYTES // len(filler.to_json()) + 1):
        writer.append_event(filler)
    write_json(path / "session.json", {"runner_pid": runner_pid, "total_runs": total,
                                       "started_at": STARTED_AT, "status": status or "running"})
    for index, outcome in enumerate(outcomes):
        run_id = f"m__t{index}__b1-s8"
        record_ended_run(writer, run_id, index, outcome)
    if running is not None:
        writer.append_event(ev.RunStarted(run_id=running, index=len(outcomes), total=total,
                                          model="m", technique="live", batch_size=1, seq_len=8,
                                          resolution=None, t=STARTED_AT + 20))
        writer.append_event(ev.PhaseChanged(run_id=running, phase="repeat", repeat=2,
                                            repeats=3, t=STARTED_AT + 21))
    if status is not None:
        writer.append_event(ev.SessionFinished(
            status=status, finished=outcomes.count("finished"),
            skipped=outcomes.count("skipped"), failed=outcomes.count("failed"), t=STARTED_AT + 9))
    writer.close()
    return path


def test_a_finished_session_reports_its_runs_without_reading_the_log_whole(tmp_path, capsys):
    results = tmp_path / "results"
    results.mkdir()
    session = write_big_session(results / "big", ["finished", "skipped", "failed"], total=3,
                                status="completed", runner_pid=os.getpid())

    snapshot = read_session(session)
    assert snapshot.status == "completed"
    assert [r.run_id for r in snapshot.runs] == ["m__t0__b1-s8", "m__t1__b1-s8", "m__t2__b1-s8"]
    assert (snapshot.finished, snapshot.skipped, snapshot.failed) == (1, 1, 1)
    assert snapshot.problems == ()  # the garbage before the tail was never read
    assert snapshot.elapsed_s == 9.0  # from session.json's start to the last event

    listed = energy_console(capsys, "list", "sessions", "--results-dir", str(results))
    assert listed.returncode == 0, listed.stderr
    assert "completed    3 runs: 1 finished, 1 skipped, 1 failed" in listed.stdout
    assert "2023-11-14 22:13 UTC" in listed.stdout

    report = energy_console(capsys, "report", str(session), "--format", "json")
    assert report.returncode == 0, report.stderr
    assert "m__t2__b1-s8" in report.stdout and "unreadable" not in report.stdout


def overwrite_keeping_size_and_time(path: Path, offset: int) -> None:
    """Garbage over a file from `offset` to its end; its size and modification time stay."""
    stat = path.stat()
    with path.open("r+b") as f:
        f.seek(offset)
        f.write(b"\xff" * (stat.st_size - offset))
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))


def test_a_finished_session_opens_from_its_summary_without_reading_events_or_samples(tmp_path,
                                                                                    capsys):
    results = tmp_path / "results"
    results.mkdir()
    session = write_big_session(results / "big", ["finished", "skipped", "failed"], total=3,
                                status="completed", runner_pid=os.getpid())
    with (session / "samples.csv").open("a") as f:
        f.writelines(f"{STARTED_AT + i * 0.05:.4f},cpu-estimate,20.0,{i:.1f}\n"
                     for i in range(2000))
    assert write_summary(session)  # what the runner does at a session's end
    from_files = SessionReader(session, use_summary=False)
    while from_files.read_some():
        pass
    from_files.finish()
    assert read_session(session) == from_files.snapshot()
    report = energy_console(capsys, "report", str(session)).stdout
    assert "m__t0__b1-s8" in report

    # events.jsonl's tail and samples.csv become unreadable, their size and time unchanged:
    # views that read them would name the bad lines; reading the summary, they show the same
    size = (session / "events.jsonl").stat().st_size
    overwrite_keeping_size_and_time(session / "events.jsonl", size - EVENTS_TAIL_BYTES)
    overwrite_keeping_size_and_time(session / "samples.csv", 0)
    snapshot = read_session(session)
    assert snapshot == from_files.snapshot() and snapshot.problems == ()
    assert snapshot.sensors[0].energy_j == 1999.0 and snapshot.sensors[0].peak_w == 20.0
    assert energy_console(capsys, "report", str(session)).stdout == report
    listed = energy_console(capsys, "list", "sessions", "--results-dir", str(results)).stdout
    assert "completed    3 runs: 1 finished, 1 skipped, 1 failed" in listed

    with (session / "events.jsonl").open("ab") as f:  # appended since: the summary is stale
        f.write(b"\n" + GARBAGE_LINE)
    assert any("unreadable" in p for p in read_session(session).problems)


def test_a_running_sessions_live_view_reads_the_tail_and_follows_on(tmp_path):
    session = write_big_session(tmp_path / "live", ["finished", "failed"], total=4,
                                status=None, runner_pid=os.getpid(), running="m__live__b1-s8")
    snapshots: list[LiveSnapshot] = []
    arrived = threading.Event()

    def deliver(snapshot: LiveSnapshot) -> None:
        snapshots.append(snapshot)
        arrived.set()

    follower = SessionFollower(session, deliver, interval_s=0.05)
    follower.start()
    try:
        assert arrived.wait(30)
        first = snapshots[0]
        assert first.status == "running" and first.problems == ()
        assert first.current is not None and first.current.run_id == "m__live__b1-s8"
        assert first.current.phase == "repeat 2 of 3"
        assert (first.total_runs, first.finished, first.failed) == (4, 1, 1)
        assert any(line.startswith("FAILED m__t1__b1-s8") for line in first.log)

        arrived.clear()
        writer = SessionWriter(session)
        writer.record_run(RunRecord(run_id="m__live__b1-s8", model="m", technique="live",
                                    device="cpu", batch_size=1, seq_len=8, status="skipped",
                                    reason="stopped"))
        writer.append_event(ev.RunSkipped(run_id="m__live__b1-s8", reason="stopped",
                                          t=STARTED_AT + 30))
        writer.close()
        for _ in range(600):
            if arrived.wait(0.05) and snapshots[-1].skipped == 1:
                break
            arrived.clear()
        last = snapshots[-1]
        assert (last.finished, last.skipped, last.failed) == (1, 1, 1)
        assert last.current is None and last.problems == ()
    finally:
        follower.stop()
        follower.join(10)

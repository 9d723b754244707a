"""`energy-console list sessions`: each session's status, run counts and start, read through
core.follow from session directories the real SessionWriter wrote."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from energy_console.core.store import events as ev
from energy_console.core.store.records import RunRecord
from energy_console.core.store.session_dir import SessionWriter, write_json

from tests.test_cli import energy_console

STARTED_AT = 1_700_000_000.0  # 2023-11-14 22:13:20 UTC



def record_ended_run(writer: SessionWriter, run_id: str, index: int, outcome: str) -> None:
    """Run `index` ended as `outcome` (finished | skipped | failed): its row and its event."""
    row = {"run_id": run_id, "model": "m", "technique": f"t{index}", "device": "cpu",
           "batch_size": 1, "seq_len": 8, "status": outcome,
           "reason": "" if outcome == "finished" else "because"}
    writer.record_run(RunRecord(**row))
    end = STARTED_AT + index + 0.5
    if outcome == "finished":
        writer.append_event(ev.RunFinished(run_id=run_id, row=row, t=end))
    elif outcome == "skipped":
        writer.append_event(ev.RunSkipped(run_id=run_id, reason="because", t=end))
    else:
        writer.append_event(ev.RunFailed(run_id=run_id, reason="because", t=end))

def write_session(path: Path, outcomes: list[str], total: int, status: str | None,
                  runner_pid: int) -> Path:
    """A session as the runner writes it: `outcomes` are the ended runs (finished, skipped or
    failed) of `total`; `status` is how the session finished, None while it runs."""
    writer = SessionWriter(path)
    write_json(path / "session.json", {"runner_pid": runner_pid, "total_runs": total,
                                       "started_at": STARTED_AT, "status": status or "running"})
    writer.append_event(ev.SessionStarted(session_id=path.name, profile_name="t",
                                          total_runs=total, runner_pid=runner_pid, sensors=[],
                                          missing_sensors=[], t=STARTED_AT))
    for index, outcome in enumerate(outcomes):
        run_id = f"m__t{index}__b1-s8"
        writer.append_event(ev.RunStarted(run_id=run_id, index=index, total=total, model="m",
                                          technique=f"t{index}", batch_size=1, seq_len=8,
                                          resolution=None, t=STARTED_AT + index))
        record_ended_run(writer, run_id, index, outcome)
    if status is not None:
        writer.append_event(ev.SessionFinished(
            status=status, finished=outcomes.count("finished"),
            skipped=outcomes.count("skipped"), failed=outcomes.count("failed"), t=STARTED_AT + 9))
    writer.close()
    return path


def _ended_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_each_session_shows_its_status_run_counts_and_start(tmp_path, request):
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    request.addfinalizer(sleeper.kill)
    results = tmp_path / "results"
    sessions = {
        "a_completed": (["finished", "finished", "skipped"], 3, "completed", 0),
        "b_stopped": (["finished", "skipped"], 5, "stopped", 0),
        "c_failed": (["failed"], 1, "failed", 0),
        "d_running": (["finished"], 4, None, sleeper.pid),
        "e_gone": (["finished", "failed"], 4, None, _ended_pid()),
    }
    for name, (outcomes, total, status, pid) in sessions.items():
        write_session(results / name, outcomes, total, status, pid)

    done = energy_console("list", "sessions", "--results-dir", str(results))
    assert done.returncode == 0, done.stderr
    lines = {Path(line.split()[0]).name: line for line in done.stdout.splitlines()}
    assert list(lines) == list(sessions)  # oldest first, by name
    expected = {
        "a_completed": ("completed", "3 runs: 2 finished, 1 skipped, 0 failed"),
        "b_stopped": ("stopped", "5 runs: 1 finished, 1 skipped, 0 failed"),
        "c_failed": ("failed", "1 run: 0 finished, 0 skipped, 1 failed"),
        "d_running": ("running", "4 runs: 1 finished, 0 skipped, 0 failed"),
        "e_gone": ("runner gone", "4 runs: 1 finished, 0 skipped, 1 failed"),
    }
    day = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(STARTED_AT))
    for name, (status, counts) in expected.items():
        line = lines[name]
        assert f"  {status} " in line and counts in line and line.endswith(day), line
    assert "TORCH LOADED" not in done.stderr


def test_no_sessions_is_said(tmp_path):
    done = energy_console("list", "sessions", "--results-dir", str(tmp_path / "none"))
    assert done.returncode == 0 and "no sessions under" in done.stdout

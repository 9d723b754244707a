"""What a view says of a session it cannot judge: a report of a running session says it is
running, and `compare S S` says both sides are one session (real session folders)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from energy_console.core.analysis.report import format_comparison, format_report
from energy_console.core.store.follow import read_session

RECORDED = Path(__file__).parent / "data" / "finished-session"


@pytest.fixture
def session(tmp_path) -> Path:
    return Path(shutil.copytree(RECORDED, tmp_path / RECORDED.name))


def test_comparing_a_session_with_itself_says_so(session):
    text = format_comparison(read_session(session), read_session(session))
    assert "A and B are the same session (finished-session)" in text


def test_comparing_two_copies_of_one_session_says_so(session, tmp_path):
    copy = Path(shutil.copytree(session, tmp_path / "copy"))
    text = format_comparison(read_session(session), read_session(copy))
    assert "copies of one session" in text


def test_comparing_two_sessions_says_nothing_of_the_kind(session, tmp_path):
    other = Path(shutil.copytree(session, tmp_path / "other"))
    info = json.loads((other / "session.json").read_text())
    info["session_id"], info["started_at"] = "another", info.get("started_at", 0) + 60
    (other / "session.json").write_text(json.dumps(info))
    text = format_comparison(read_session(session), read_session(other))
    assert "same session" not in text and "copies of one session" not in text


def test_a_report_of_a_running_session_says_it_is_running_and_how_far_it_is(session):
    events = session / "events.jsonl"
    lines = events.read_text().splitlines()
    cut = next(i for i, line in enumerate(lines) if '"kind":"run_finished"' in line) + 1
    events.write_text("\n".join(lines[:cut]) + "\n")  # the session as it was after one run
    (session / "runs.csv").unlink()
    info = json.loads((session / "session.json").read_text())
    info.update(status="running", runner_pid=None)
    (session / "session.json").write_text(json.dumps(info))
    snapshot = read_session(session)
    assert snapshot.is_running
    text = format_report(snapshot)
    assert f"is still running: 1 of {snapshot.total_runs} runs ended so far" in text

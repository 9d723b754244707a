"""Stopping a session of thousands of runs: the run in progress is cancelled, the runs not started
are recorded as skipped in one go (one runs.csv rewrite, no folder each), and it ends in seconds
with counts that agree everywhere. In this process: what is proven lies between the runner, its
plan and its files (Ctrl-C sent to a runner process's foreground group: tests/test_session.py)."""

from __future__ import annotations

import csv
import os
import signal
import time
from collections import Counter
from pathlib import Path

import pytest
from energy_console.core.session.plan import plan_batches
from energy_console.core.session.profile_check import load_profile
from energy_console.core.session.stopping import STOPPING

from tests.session_helpers import read_events, run_cli_here_while, wait_for_event, write_profile

pytestmark = pytest.mark.session  # slow tier: a real runner and its workers

AMOUNTS = [round(0.01 * i, 2) for i in range(1, 61)]
MANY_RUNS = (
    "models: [demo/tiny-bert-random]\ntechniques:\n  - baseline\n"
    + "".join(f"  - {{magnitude-prune: {{amount: {a}}}}}\n" for a in AMOUNTS)
    + "inputs: {batch_sizes: [1, 2, 3, 4, 5, 6, 7, 8], sequence_lengths: [8, 12, 16, 20, 24, 32]}\n"
)



def recorded_statuses(session: Path, planned: list[str], finished: dict) -> Counter:
    """runs.csv holds every planned run once, and its statuses count what session_finished
    says; returns those counts."""
    with (session / "runs.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert sorted(r["run_id"] for r in rows) == sorted(planned)
    statuses = Counter(r["status"] for r in rows)
    assert {k: finished[k] for k in ("finished", "skipped", "failed")} == {
        k: statuses[k] for k in ("finished", "skipped", "failed")}
    return statuses

@pytest.fixture(autouse=True)
def ctrl_c_after_the_session_is_harmless():
    """A Ctrl-C sent to this process once its session has ended goes nowhere (the runner puts
    back the handler it found), instead of interrupting the tests."""
    previous = signal.signal(signal.SIGINT, lambda signum, frame: None)
    yield
    signal.signal(signal.SIGINT, previous)


def ctrl_c() -> None:
    os.kill(os.getpid(), signal.SIGINT)  # the runner's handler, on this process's main thread


def run_many(tmp_path: Path, act) -> tuple[list[str], Path, int, float]:
    """A session of thousands of runs in this process, `act` doing its part once the first run
    has finished; returns the planned run ids, the session, its exit status and how long it
    took after `act` returned."""
    profile = write_profile(tmp_path, MANY_RUNS)
    batches = plan_batches(load_profile(profile), None, frozenset())
    planned = [spec.run_id for batch in batches for spec in batch.runs]
    assert len(planned) > 2500
    session = tmp_path / "session"

    def after_the_first_run() -> float:
        wait_for_event(session, lambda e: e["kind"] == "run_finished", timeout_s=180)
        act(session)
        return time.monotonic()

    done, acted_at = run_cli_here_while(after_the_first_run, session, str(profile),
                                        "--session-dir", str(session), "--quiet")
    return planned, session, done.returncode, time.monotonic() - acted_at


def test_ctrl_c_on_thousands_of_runs_ends_in_seconds_and_the_counts_agree(tmp_path: Path):
    planned, session, code, took_s = run_many(tmp_path, lambda session: ctrl_c())  # once
    print(f"{len(planned)} runs: stopped in {took_s:.1f} s")
    assert took_s < 30
    assert code == 130
    events = read_events(session)
    finished = events[-1]
    assert finished["kind"] == "session_finished" and finished["status"] == "stopped"
    assert finished["message"] == "stopped on request"  # ended by itself, not interrupted
    statuses = recorded_statuses(session, planned, finished)
    assert statuses["finished"] >= 1
    ended = [e for e in events if e["kind"] in ("run_finished", "run_skipped", "run_failed")]
    assert len(ended) == len(planned)
    started = {e["run_id"] for e in events if e["kind"] == "run_started"}
    folders = {p.name for p in (session / "runs").iterdir()}
    assert folders <= started, f"{len(folders - started)} folders of runs never started"
    # the run in progress was being cancelled: the console was told a second Ctrl-C ends it
    assert any(e["kind"] == "notice" and e["message"] == STOPPING for e in events)


def test_a_second_ctrl_c_still_leaves_counts_that_agree_and_every_run_recorded(tmp_path: Path):
    def twice(session: Path) -> None:
        ctrl_c()
        wait_for_event(session, lambda e: e["kind"] == "notice" and e["message"] == STOPPING)
        ctrl_c()  # while the first one's cancel and skips are under way: ends it at once

    planned, session, code, _ = run_many(tmp_path, twice)
    assert code == 130
    finished = read_events(session)[-1]
    assert finished["kind"] == "session_finished" and finished["status"] == "stopped"
    assert finished["message"] == "interrupted"  # the second Ctrl-C, not the first, ended it
    recorded_statuses(session, planned, finished)

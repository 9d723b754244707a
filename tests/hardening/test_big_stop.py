"""Stopping a session of thousands of runs: the run in progress is cancelled, the runs not started
are recorded as skipped in one go (one runs.csv rewrite, no folder each), and it ends in seconds
with counts that agree everywhere."""

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

from tests.session_helpers import read_events, start_cli_session, wait_for_event, write_profile

pytestmark = pytest.mark.session  # slow tier: a real runner process

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

def test_ctrl_c_on_thousands_of_runs_ends_in_seconds_and_the_counts_agree(tmp_path: Path):
    profile = write_profile(tmp_path, MANY_RUNS)
    batches = plan_batches(load_profile(profile), None, frozenset())
    planned = [spec.run_id for batch in batches for spec in batch.runs]
    assert len(planned) > 2500
    session = tmp_path / "session"
    runner = start_cli_session(profile, session)
    try:
        wait_for_event(session, lambda e: e["kind"] == "run_finished", timeout_s=180)
        stopped_at = time.monotonic()
        os.killpg(runner.pid, signal.SIGINT)  # Ctrl-C, once
        runner.wait(timeout=120)
        took_s = time.monotonic() - stopped_at
    finally:
        runner.kill()
    print(f"{len(planned)} runs: stopped in {took_s:.1f} s")
    assert took_s < 30, runner.stderr.read() if runner.stderr else ""
    events = read_events(session)
    finished = events[-1]
    assert finished["kind"] == "session_finished" and finished["status"] == "stopped"
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
    profile = write_profile(tmp_path, MANY_RUNS)
    planned = [spec.run_id for batch in plan_batches(load_profile(profile), None, frozenset())
               for spec in batch.runs]
    session = tmp_path / "session"
    runner = start_cli_session(profile, session)
    try:
        wait_for_event(session, lambda e: e["kind"] == "run_finished", timeout_s=180)
        os.killpg(runner.pid, signal.SIGINT)
        os.killpg(runner.pid, signal.SIGINT)  # at once: ends it without waiting for the cancel
        runner.wait(timeout=60)
    finally:
        runner.kill()
    assert runner.returncode == 130
    finished = read_events(session)[-1]
    assert finished["kind"] == "session_finished" and finished["status"] == "stopped"
    recorded_statuses(session, planned, finished)

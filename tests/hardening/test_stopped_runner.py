"""A runner stopped (SIGSTOP: suspended, or starved) inside a timed window: the window has no
readings to stand on, so the run is marked with the gap, never a clean figure (real runner and
worker processes, real signals)."""

from __future__ import annotations

import os
import signal
import time

import pytest
from energy_console.core.store.session_dir import read_runs

from tests.session_helpers import start_cli_session, wait_for_event, write_profile

pytestmark = pytest.mark.session


def test_a_runner_stopped_inside_a_window_marks_the_run_with_the_gap(tmp_path):
    profile = write_profile(tmp_path, """\
models: [demo/tiny-bert-random]
techniques: [baseline]
inputs: {batch_sizes: [1], sequence_lengths: [16]}
""", protocol="""\
protocol:
  idle_seconds: 0.3
  warmup: 1
  min_window_s: 3.0
  repeats: 1
  sample_hz: 20
  threads: 1
""")
    session = tmp_path / "session"
    runner = start_cli_session(profile, session)
    try:
        wait_for_event(session, lambda e: e["kind"] == "phase" and e["phase"] == "repeat")
        os.kill(runner.pid, signal.SIGSTOP)  # the worker goes on timing its window
        time.sleep(1.5)
        os.kill(runner.pid, signal.SIGCONT)
        runner.communicate(timeout=180)
    finally:
        runner.kill()
    (record,) = read_runs(session)
    assert record.status == "finished"
    assert record.energy_source == "faulty"
    assert "no readings for" in record.energy_fault
    assert "stopped or starved" in record.energy_fault

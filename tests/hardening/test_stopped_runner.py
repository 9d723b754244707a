"""A runner stopped (SIGSTOP: suspended, or starved) inside a timed window: the window has no
readings to stand on, so it is left out and measured again, never a clean figure made of it (real
runner and worker processes, real signals)."""

from __future__ import annotations

import os
import signal
import time

import pytest
from energy_console.core.store.session_dir import read_runs

from tests.session_helpers import start_cli_session, wait_for_event, write_plain_torch_profile

pytestmark = pytest.mark.session


def test_a_window_the_runner_was_stopped_in_is_measured_again(tmp_path):
    profile = write_plain_torch_profile(tmp_path, techniques="[baseline]", protocol="""\
protocol:
  idle_seconds: 0.3
  warmup: 1
  min_window_s: 2.0
  repeats: 1
  sample_hz: 20
  threads: 1
""")
    session = tmp_path / "session"
    runner = start_cli_session(profile, session)
    try:
        wait_for_event(session, lambda e: e["kind"] == "phase" and e["phase"] == "repeat")
        # the worker goes on timing its window: a gap that overlaps it at all is its fault, so
        # the stop need only begin in it (the window is long enough for that on a loaded box)
        os.kill(runner.pid, signal.SIGSTOP)
        time.sleep(2.0)  # over the sampler's gap (1.5 s at the display rate)
        os.kill(runner.pid, signal.SIGCONT)
        runner.communicate(timeout=180)
    finally:
        runner.kill()
    (record,) = read_runs(session)
    assert record.status == "finished"
    assert record.windows_dropped == 1
    assert record.repeats == 1
    assert record.energy_source == "estimated"  # the window measured again: a clean figure
    assert record.energy_fault == "" and record.disturbed == ""

"""The headless progress display when a stop skips thousands of runs: a few lines, then one."""

from __future__ import annotations

import io
import time

from energy_console.core.cli.progress import SKIP_LINES, ProgressDisplay
from energy_console.core.session.stopping import STOPPED_BEFORE
from energy_console.core.store import events as ev
from rich.console import Console


def test_thousands_of_skipped_runs_take_a_few_lines_and_no_time():
    out = io.StringIO()
    display = ProgressDisplay(Console(file=out, force_terminal=True, width=200))
    with display:
        display.on_event(ev.SessionStarted(session_id="s", profile_name="p", total_runs=5001,
                                           runner_pid=1, sensors=[], missing_sensors=[]))
        display.on_event(ev.RunSkipped(run_id="r-cuda", reason="needs cuda"))
        began = time.monotonic()
        for i in range(5000):
            display.on_event(ev.RunSkipped(run_id=f"r{i}", reason=STOPPED_BEFORE))
        display.on_event(ev.SessionFinished(status="stopped", message="", finished=0,
                                            skipped=5001, failed=0))
        took_s = time.monotonic() - began
        assert display.task is not None
        assert display.progress.tasks[0].completed == 5001
    print(f"5,000 skipped runs shown in {took_s:.2f} s")
    assert took_s < 5
    text = out.getvalue()
    assert "r-cuda: needs cuda" in text
    assert [f"r{i}: {STOPPED_BEFORE}" in text for i in range(SKIP_LINES + 1)] == \
        [True] * SKIP_LINES + [False]
    assert f"{5000 - SKIP_LINES} more run(s): {STOPPED_BEFORE}" in text

"""One measuring session per machine."""

from __future__ import annotations

import signal
import subprocess
import sys

import pytest
from energy_console.core.session.machine_lock import MachineBusy, MachineLock
from energy_console.core.session.profile_check import load_profile
from energy_console.core.session.runner import Runner

from tests.session_helpers import (
    start_cli_session,
    wait_for_first_warmup,
    write_profile,
)


def test_a_second_session_is_refused_and_told_who_holds_the_machine(tmp_path):
    first = MachineLock(tmp_path / "lock")
    first.acquire(tmp_path / "session-a")
    with pytest.raises(MachineBusy) as info:
        MachineLock(tmp_path / "lock").acquire(tmp_path / "session-b")
    assert "session-a" in str(info.value) and "would measure each other" in str(info.value)
    first.release()
    second = MachineLock(tmp_path / "lock")
    second.acquire(tmp_path / "session-b")
    second.release()


def test_the_machine_is_free_again_when_the_holder_is_killed(tmp_path):
    holder = subprocess.Popen(
        [sys.executable, "-c", (
            "import sys, time; from pathlib import Path; "
            "from energy_console.core.session.machine_lock import MachineLock; "
            "MachineLock(sys.argv[1]).acquire(Path('x')); print('held', flush=True);"
            " time.sleep(60)"), str(tmp_path / "lock")],
        stdout=subprocess.PIPE, text=True,
    )
    assert holder.stdout.readline().strip() == "held"
    with pytest.raises(MachineBusy):
        MachineLock(tmp_path / "lock").acquire(tmp_path / "s")
    holder.send_signal(signal.SIGKILL)
    holder.wait(timeout=10)
    lock = MachineLock(tmp_path / "lock")
    lock.acquire(tmp_path / "s")
    lock.release()


@pytest.mark.session
def test_a_session_started_while_another_measures_ends_at_once_and_says_why(tmp_path):
    body = """\
models: [demo/tiny-bert-random]
techniques: [baseline]
inputs: {batch_sizes: [1], sequence_lengths: [16]}
"""
    running = start_cli_session(write_profile(tmp_path, body, name="first"), tmp_path / "first")
    try:
        wait_for_first_warmup(tmp_path / "first")
        second = Runner(load_profile(write_profile(tmp_path, body, name="second")),
                        tmp_path / "second").run()
        assert second.status == "failed" and second.finished == 0
        assert str(tmp_path / "first") in second.message
        assert second.refused
        # nothing left behind: `report` and `attach` would take it for the newest session
        assert not (tmp_path / "second").exists()
        running.wait(timeout=120)
    finally:
        running.kill()
    assert running.returncode == 0

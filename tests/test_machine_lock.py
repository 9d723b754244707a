"""One measuring session per machine. (A session started while another measures, from the CLI
and as a Runner: tests/hardening/test_resume.py, beside the runner process it meets.)"""

from __future__ import annotations

import signal
import subprocess
import sys

import pytest
from energy_console.core.session.machine_lock import MachineBusy, MachineLock


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

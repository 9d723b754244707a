"""The control file on hostile ground: binary junk, FIFOs, links, near-miss commands.

Views (or a user with `echo stop >> control`) write commands there; the runner polls it for hours.
Only exact commands act (`stop`, `cancel RUN_ID` with the exact id); everything else is ignored
with a notice, a FIFO or device in its place is never read (nor waited on), reads are bounded.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import psutil
import pytest
from energy_console.core.store import control
from energy_console.core.store.control import ControlReader, send_control

from tests.session_helpers import (
    read_events,
    run_cli_here_while,
    wait_for_event,
    wait_for_first_warmup,
    write_profile,
)


def commands(reader: ControlReader) -> list[tuple[str, str | None]]:
    return [(c.action, c.run_id) for c in reader.poll()]


def acted(reader: ControlReader) -> list[tuple[str, str | None]]:
    return [c for c in commands(reader) if c[0] != "ignored"]


def append(folder: Path, data: bytes) -> None:
    with (folder / "control").open("ab") as f:
        f.write(data)


NEAR_MISSES = [b"cancelled", b"cancel", b"cancel ", b"cancel  r1", b"CANCEL r1", b"cancel r1 now",
               b"cancel r1/../r2", b"cancel ../r1", b"stop it", b"stopped", b"STOP",
               b"st\x00op", b"cancel r1\x00", b"\xff\xfestop", b"cancel r\xc3\xa91"]


def test_only_exact_commands_act(tmp_path):
    reader = ControlReader(tmp_path)
    for line in NEAR_MISSES:
        append(tmp_path, line + b"\n")
        assert acted(reader) == [], line
    append(tmp_path, b"cancel r1\n  stop  \r\ncancel r1\n")
    assert acted(reader) == [("cancel", "r1"), ("stop", None), ("cancel", "r1")]


def test_binary_junk_is_ignored_with_one_notice_and_commands_after_it_still_act(tmp_path):
    reader = ControlReader(tmp_path)
    junk = os.urandom(200_000) + b"\n\xff\xfe\xfd\n\x00\x00\n" + bytes(range(256))
    append(tmp_path, junk + b"\n")
    seen = []
    for _ in range(10):  # bounded chunks: it takes a few polls to pass 200 kB
        seen += commands(reader)
    assert [a for a, _ in seen] == ["ignored"]  # one notice: they are rate-limited
    append(tmp_path, b"stop\n")
    assert acted(reader) == [("stop", None)]


def test_an_endless_line_is_dropped_in_bounded_reads(tmp_path):
    reader = ControlReader(tmp_path)
    append(tmp_path, b"x" * (3 * control.CONTROL_READ_BYTES))
    for _ in range(5):
        assert acted(reader) == []
    append(tmp_path, b"stop\nstop\n")  # the first ends the junk line, the second is a command
    assert acted(reader) == [("stop", None)]


def test_old_commands_are_not_replayed_and_a_replaced_file_is_read_from_its_start(tmp_path):
    send_control(tmp_path, "stop")
    reader = ControlReader(tmp_path)
    assert acted(reader) == []
    (tmp_path / "control").unlink()
    assert acted(reader) == []
    send_control(tmp_path, "cancel r2")
    assert acted(reader) == [("cancel", "r2")]
    (tmp_path / "control").write_text("stop\n")  # truncated and rewritten
    assert acted(reader) == [("stop", None)]


def test_a_fifo_is_neither_read_nor_waited_on(tmp_path):
    os.mkfifo(tmp_path / "control")
    reader = ControlReader(tmp_path)
    done = []
    thread = threading.Thread(target=lambda: done.append(list(reader.poll())), daemon=True)
    thread.start()
    thread.join(5)
    assert done, "poll blocked on a FIFO"
    (ignored,) = done[0]
    assert ignored.action == "ignored" and "not a regular file" in ignored.reason
    assert f"rm {tmp_path / 'control'}" in ignored.reason


def test_links_and_devices_are_not_followed(tmp_path):
    (tmp_path / "control").symlink_to("/dev/zero")
    reader = ControlReader(tmp_path)
    (ignored,) = list(reader.poll())
    assert "cannot be opened" in ignored.reason
    victim = tmp_path / "victim"
    victim.write_text("stop\n")
    (tmp_path / "control").unlink()
    (tmp_path / "control").symlink_to(victim)
    assert acted(reader) == []
    (tmp_path / "control").unlink()
    (tmp_path / "control").mkdir()
    assert acted(reader) == []


LONG_RUN = """\
models: [demo/tiny-bert-random]
techniques: [baseline, dynamic-int8]
inputs: {batch_sizes: [1], sequence_lengths: [16]}
"""
LONG_PROTOCOL = """\
protocol:
  idle_seconds: 0.3
  warmup: 1
  min_window_s: 1
  repeats: 60
  sample_hz: 20
  threads: 1
"""


def ended_runs(session: Path) -> list[dict]:
    return [e for e in read_events(session) if e["kind"] in ("run_finished", "run_skipped",
                                                             "run_failed")]


@pytest.mark.session
def test_a_real_runner_survives_junk_fifos_and_near_misses_and_cancels_on_the_exact_id(tmp_path):
    profile = write_profile(tmp_path, LONG_RUN, protocol=LONG_PROTOCOL)
    session = tmp_path / "session"

    def junk_then_cancel_then_sigterm():
        run_id = wait_for_first_warmup(session)["run_id"]
        control = session / "control"
        os.mkfifo(control)  # a FIFO: reading it would block the runner for good
        wait_for_event(session, lambda e: e["kind"] == "notice"
                       and "not a regular file" in e["message"], timeout_s=30)
        control.unlink()
        append(session, os.urandom(100_000) + b"\n\xff\xfe\n")
        for line in (b"cancelled", b"cancel other-id", b"cancel", f"cancel {run_id}x".encode(),
                     f"CANCEL {run_id}".encode(), f"cancel  {run_id}".encode()):
            append(session, line + b"\n")
        wait_for_event(session, lambda e: e["kind"] == "notice" and "control file" in e["message"]
                       and "ignored" in e["message"], timeout_s=30)
        time.sleep(1.0)
        assert not [e for e in read_events(session) if e["kind"] == "session_finished"]
        assert ended_runs(session) == []  # nothing cancelled, nothing crashed
        phases = len([e for e in read_events(session) if e["kind"] == "phase"])
        send_control(session, f"cancel {run_id}")
        (ended,) = [wait_for_event(session, lambda e: e.get("run_id") == run_id
                                   and e["kind"].startswith("run_") and e["kind"] != "run_started",
                                   timeout_s=30)]
        assert "cancelled by the user" in ended["reason"]
        assert phases > 2
        second = wait_for_event(session, lambda e: e["kind"] == "run_started"
                                and e["run_id"] != run_id)
        control.unlink()
        os.mkfifo(control)  # a FIFO again: SIGTERM must still end the session
        time.sleep(0.5)
        os.kill(os.getpid(), signal.SIGTERM)  # to the runner: this process, while it measures
        return second

    # in this process: what is proven lies between the runner and its control file
    _, second = run_cli_here_while(junk_then_cancel_then_sigterm, session, str(profile),
                                   "--session-dir", str(session), "--quiet")
    assert read_events(session)[-1]["status"] == "stopped"
    assert not psutil.pid_exists(second["worker_pid"]) or \
        psutil.Process(second["worker_pid"]).status() == psutil.STATUS_ZOMBIE

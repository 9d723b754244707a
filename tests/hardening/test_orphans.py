"""No orphans: what a worker starts (a tokenizer or thread-pool helper) ends with its run.

Each worker leads its own process group (worker_entry), and stop_worker ends the group, not only
the worker: SIGTERM, SIGKILL after a grace period, then whatever is left of the group.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import time

import psutil
import pytest
from energy_console.core.session.worker_process import stop_worker
from energy_console.core.store.control import send_control

from tests.session_helpers import (
    read_events,
    run_cli_here_while,
    wait_for_event,
    wait_for_first_warmup,
    wait_gone,
    write_profile,
)

pytestmark = pytest.mark.session  # slow tier: real runner sessions, CLI processes, end-to-end UI


def group_members(pgid: int) -> list[int]:
    members = []
    for p in psutil.process_iter(["status"]):
        try:
            if os.getpgid(p.pid) == pgid and p.info["status"] != psutil.STATUS_ZOMBIE:
                members.append(p.pid)
        except (ProcessLookupError, psutil.NoSuchProcess):
            continue
    return members


def _worker_with_grandchild(conn, stubborn: bool, exit_at_once: bool) -> None:
    """A stand-in worker: leads its group as worker_entry does, starts a sleeping helper, and
    blocks (or ignores SIGTERM, or ends at once leaving the helper behind)."""
    os.setpgid(0, 0)
    command = ["sh", "-c", "trap '' TERM; sleep 60"] if stubborn else ["sleep", "60"]
    helper = subprocess.Popen(command, stdin=subprocess.DEVNULL)
    conn.send(helper.pid)
    if exit_at_once:
        os._exit(0)
    if stubborn:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    time.sleep(600)


@pytest.mark.parametrize("stubborn,exit_at_once", [(False, False), (True, False), (False, True),
                                                    (True, True)],
                         ids=["blocked", "ignores-sigterm", "ended-leaving-it", "ended-stubborn"])
def test_stop_worker_ends_what_the_worker_started(stubborn, exit_at_once):
    context = multiprocessing.get_context("forkserver")
    parent, child = context.Pipe(duplex=False)
    process = context.Process(target=_worker_with_grandchild, args=(child, stubborn, exit_at_once),
                              daemon=True)
    process.start()
    child.close()
    assert parent.poll(60)
    helper = parent.recv()
    assert psutil.pid_exists(helper)
    if exit_at_once:
        process.join(10)
        assert wait_gone([process.pid], 5) == []
        assert wait_gone([helper], 0.5) == [helper]  # left behind, as a helper would be
    started = time.monotonic()
    stop_worker(process)
    assert wait_gone([process.pid, helper], timeout_s=1) == []
    assert group_members(process.pid) == []
    assert time.monotonic() - started < 10


def test_stop_worker_leaves_a_group_it_does_not_own_alone():
    bystander = subprocess.Popen(["sleep", "30"], start_new_session=True)  # leads group pid
    try:
        class Gone:
            pid = bystander.pid

            @staticmethod
            def is_alive():
                return False  # as if a worker with this pid had ended and the id was reused

        stop_worker(Gone())
        assert bystander.poll() is None
    finally:
        bystander.kill()
        bystander.wait()


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


def test_a_cancelled_run_leaves_no_process_of_its_worker_group(tmp_path):
    profile = write_profile(tmp_path, LONG_RUN, protocol=LONG_PROTOCOL)
    session = tmp_path / "session"

    def cancel_the_first_run_then_ctrl_c():
        started = wait_for_first_warmup(session)
        worker = started["worker_pid"]
        assert os.getpgid(worker) == worker  # the worker leads its own group
        assert os.getpgid(os.getpid()) != worker  # the runner: this process
        send_control(session, f"cancel {started['run_id']}")
        wait_for_event(session, lambda e: e.get("run_id") == started["run_id"]
                       and e["kind"] in ("run_skipped", "run_failed"))
        assert wait_gone([worker], timeout_s=10) == []
        assert group_members(worker) == []
        second = wait_for_event(session, lambda e: e["kind"] == "run_started"
                                and e["run_id"] != started["run_id"])
        wait_for_event(session, lambda e: e.get("run_id") == second["run_id"]
                       and e["kind"] == "phase" and e["phase"] == "warmup")
        os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C still stops the session
        return second

    # in this process: what is proven lies between the runner and its workers' groups
    done, second = run_cli_here_while(cancel_the_first_run_then_ctrl_c, session, str(profile),
                                      "--session-dir", str(session), "--quiet")
    assert done.returncode == 130
    assert read_events(session)[-1]["status"] == "stopped"
    assert wait_gone([second["worker_pid"]], timeout_s=10) == []
    assert group_members(second["worker_pid"]) == []

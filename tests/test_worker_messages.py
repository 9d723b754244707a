"""The worker's pipe: typed messages that cross it whole, and failures that carry the errno behind
them (a full disk is known by its errno, never by its text)."""

from __future__ import annotations

import errno
import multiprocessing
import os

from energy_console.core.models import ModelLoadError
from energy_console.core.worker.entry import run_error
from energy_console.core.worker.messages import PhaseMark, RunError, RunnerReady


def raised(make) -> BaseException:
    try:
        make()
    except BaseException as exc:  # noqa: BLE001 - the exception is the point
        return exc
    raise AssertionError("nothing was raised")


def disk_full() -> OSError:
    return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_messages_cross_the_pipe_whole_and_compare_by_value():
    sent = [PhaseMark("r1", "repeat", 12.5, edge="start", repeat=1, repeats=3, iterations=40),
            RunError("r1", "OSError: no room", out_of_memory=False, ends_worker=True,
                     errno=errno.ENOSPC),
            RunnerReady("r2")]
    runner_end, worker_end = multiprocessing.Pipe()
    for message in sent:
        worker_end.send(message)
    assert [runner_end.recv() for _ in sent] == sent


def test_a_failure_a_library_wraps_carries_the_errno_of_the_os_error_behind_it():
    def save():
        try:
            raise disk_full()
        except OSError as exc:
            raise RuntimeError("file write failed") from exc

    message = run_error("r1", raised(save), ends_worker=True)
    assert message.errno == errno.ENOSPC
    assert message.reason == "RuntimeError: file write failed"  # the text the user saw before


def test_bad_input_raised_while_the_disk_was_full_carries_its_errno_and_keeps_the_worker():
    def load():
        try:
            raise disk_full()
        except OSError:
            raise ModelLoadError("demo/x could not be loaded") from None

    exc = raised(load)
    assert exc.__cause__ is None and exc.__suppress_context__  # context only, still followed
    message = run_error("r1", exc, ends_worker=False)
    assert (message.errno, message.reason) == (errno.ENOSPC, "demo/x could not be loaded")


def test_a_failure_with_no_os_error_behind_it_has_no_errno():
    message = run_error("r1", raised(lambda: 1 / 0), ends_worker=True)
    assert message.errno is None and message.reason == "ZeroDivisionError: division by zero"
    assert not message.out_of_memory

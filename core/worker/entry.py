"""The worker: one process per model variant. Loads the model and compresses it once, then
measures each of the variant's runs (input sizes, smallest first) as a run of its own, with the
workload the registry picks for the run's workload and the model's task (core.worker.workloads:
infer, detect, generate, train; a train run is a variant of its own), resting protocol.cooldown_s
before each input size but the first.

It never reads a sensor. What it prints goes to the current run's worker.log. It talks to the
runner over a pipe in the messages of core.worker.messages, each run's in order. An error that
may have left the process unsound (anything but bad input: out of memory, a kernel's exception)
ends the worker after it is sent; the runner goes on with the variant's remaining runs in a fresh
worker. The runner's forkserver preloads this module (through core.worker.preload), so each worker
starts from a process where torch and transformers are imported.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
import traceback
from pathlib import Path

os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from energy_console.core.models import ModelLoadError  # noqa: E402
from energy_console.core.models.base import NotApplicable  # noqa: E402
from energy_console.core.quality.datasets import DatasetError  # noqa: E402
from energy_console.core.spec.workloads import Workload  # noqa: E402
from energy_console.core.worker.messages import (  # noqa: E402
    JudgeWindows,
    PhaseMark,
    RunError,
    RunMeasured,
    RunnerReady,
    RunNotApplicable,
    WindowsJudged,
    WorkerMessage,
)
from energy_console.core.worker.variant import load_variant  # noqa: E402
from energy_console.core.worker.variant_cache import VariantCache  # noqa: E402
from energy_console.core.worker.windows import JUDGE  # noqa: E402
from energy_console.core.worker.workloads import workload_for  # noqa: E402

BAD_INPUT = (ModelLoadError, DatasetError)  # the message says the fix; the worker stays sound


def worker_entry(conn, runs, runs_dir: str, cache_dir: str, runner_pid: int,
                 variant_cache_dir: str | None = None) -> None:
    """Process target. Never raises: every outcome is a message on the pipe, one per run (up to
    the run whose error ended the worker)."""
    with contextlib.suppress(OSError):  # its own process group: the runner stops all it starts
        os.setpgid(0, 0)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C in the terminal is the runner's to act on
    _redirect_output(Path(runs_dir) / runs[0].run_id / "worker.log")
    _die_with_runner(runner_pid)

    def send(message: WorkerMessage) -> None:
        conn.send(message)

    def mark(phase: str, run_id: str, **fields) -> bool | None:
        if phase == "ready":  # the runner's work on the previous run overlaps warm-up only
            _wait_for_runner(conn, run_id)
            return None
        if phase == JUDGE:  # are the windows so far enough? only the runner knows their energy
            send(JudgeWindows(run_id, fields["judged"], fields["windows"]))
            return _runner_verdict(conn, run_id)
        t = fields.pop("t", None)
        send(PhaseMark(run_id, phase, time.monotonic() if t is None else t, **fields))
        return None

    try:
        cache = VariantCache(Path(variant_cache_dir)) if variant_cache_dir else None
        try:
            start = load_variant(runs, Path(cache_dir), mark, cache)
            workload = workload_for(Workload(start.first.workload), start.loaded.task)
            variant = workload.prepare(start, mark)
        except NotApplicable as exc:  # the technique or device: no run of the variant can happen
            for spec in runs:
                send(RunNotApplicable(spec.run_id, str(exc)))
            return
        except BaseException as exc:
            send(run_error(runs[0].run_id, exc, ends_worker=True))
            return
        for i, spec in enumerate(runs):
            if i:
                _redirect_output(Path(runs_dir) / spec.run_id / "worker.log")
                rest_between_runs(spec.protocol)
            try:
                send(RunMeasured(spec.run_id, workload.measure(variant, spec, mark)))
            except NotApplicable as exc:
                send(RunNotApplicable(spec.run_id, str(exc)))
            except BaseException as exc:
                ends = not isinstance(exc, BAD_INPUT)
                send(run_error(spec.run_id, exc, ends_worker=ends))
                if ends:
                    return  # the rest go on in a fresh worker
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        conn.close()


def rest_between_runs(protocol) -> None:
    """The rest before each input size of a variant but the first, so heat from one run does not
    throttle the next (the runner rests between variants)."""
    if protocol.cooldown_s > 0:
        time.sleep(protocol.cooldown_s)


def _runner_verdict(conn, run_id: str) -> bool:
    """The runner's WindowsJudged for this run: whether its windows are enough."""
    while True:
        answer = conn.recv()
        if isinstance(answer, WindowsJudged) and answer.run_id == run_id:
            return answer.enough


def _wait_for_runner(conn, run_id: str) -> None:
    """Block until the runner says it follows this run (once it has recorded the previous one)."""
    while conn.recv() != RunnerReady(run_id):
        pass


def is_out_of_memory(exc: BaseException) -> bool:
    import torch  # already imported in a worker (core.worker.preload); not by importing entry

    return isinstance(exc, (MemoryError, torch.OutOfMemoryError))


def run_error(run_id: str, exc: BaseException, ends_worker: bool) -> RunError:
    """The message for a run that raised exc; anything but bad input prints its traceback."""
    if isinstance(exc, BAD_INPUT):
        return RunError(run_id, str(exc), out_of_memory=False, ends_worker=ends_worker,
                        errno=_os_errno(exc))
    traceback.print_exc()  # to the run's worker.log
    return RunError(run_id, f"{type(exc).__name__}: {exc}", out_of_memory=is_out_of_memory(exc),
                    ends_worker=ends_worker, errno=_os_errno(exc))


def _os_errno(exc: BaseException) -> int | None:
    """The errno of the first OSError in the exception's chain (what it was raised from or
    while handling): a library that wraps a full disk in its own exception still says so."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, OSError) and current.errno is not None:
            return current.errno
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def _redirect_output(log_path: Path) -> None:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    sys.stdout = open(1, "w", buffering=1, closefd=False)  # noqa: SIM115
    sys.stderr = open(2, "w", buffering=1, closefd=False)  # noqa: SIM115


def _die_with_runner(runner_pid: int) -> None:
    """A worker must never outlive its runner, even one killed with SIGKILL."""
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG

    def watch() -> None:
        while True:
            try:
                os.kill(runner_pid, 0)
            except ProcessLookupError:
                os._exit(3)
            time.sleep(0.5)

    threading.Thread(target=watch, name="runner-watch", daemon=True).start()

"""Starting, stopping and reading the fate of worker processes (the runner's side).

One worker measures the runs of one model variant. Workers fork from a forkserver that preloaded
torch, and transformers or onnx where the session's models and techniques use them (no CUDA
initialised there), so each variant starts in a clean process without paying the imports again.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from energy_console.core.models.base import ONNX_PACKAGE
from energy_console.core.store.follow import process_alive

if TYPE_CHECKING:
    from energy_console.core.spec.profile import Profile

KILL_GRACE_S = 3.0


# What every worker imports (torch, the worker's own modules), last: it freezes what the forkserver
# imported out of the collector's sight (see there).
WORKER_PRELOAD = "energy_console.core.worker.preload"


def preload_modules(profile: Profile) -> list[str]:
    """What the forkserver of a session measuring `profile` imports before forking workers, in
    order, WORKER_PRELOAD last: what its models' sources name (ModelSource.preload:
    transformers' classes, 3.7 s of imports a variant's worker would pay again, and onnx), and
    `onnx` where a technique needs it (1.4 CPU-s: its ml_dtypes). onnx starts no thread
    (onnxruntime's import starts one, which a fork would not carry over; it imports in 0.05 s,
    so workers import it themselves)."""
    from energy_console.core.compression import techniques
    from energy_console.core.models import source_for

    known = techniques()
    named = {module for entry in profile.models
             for module in source_for(entry.source).preload(entry)}
    if any(ONNX_PACKAGE in known[step.name].requires
           for spec in profile.techniques for step in spec.steps if step.name in known):
        named.add(ONNX_PACKAGE)
    return [*sorted(named), WORKER_PRELOAD]


def forkserver_context(profile: Profile) -> Any:
    """A forkserver context whose server has finished its preload (preload_modules): call it
    before the idle baseline, so the imports neither load the idle machine nor delay the first
    run. A forkserver serves every later session of its process with its first preload: a worker
    imports what it lacks."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(preload_modules(profile))
    ready = context.Process(target=_forkserver_ready, name="forkserver-warmup")
    ready.start()
    ready.join()
    return context


def start_worker(context: Any, runs: tuple[Any, ...], runs_dir: Path, cache_dir: Path,
                 variant_cache_dir: Path | None = None) -> tuple[Any, Any]:
    """(process, the runner's end of its pipe) for the runs of one variant, measured in order;
    the worker dies with this process. It creates files with this process's umask (the
    session's, see core.session.guard), not with the one the forkserver started under: a
    forkserver outlives a session, and serves the next one of the same process."""
    parent_conn, child_conn = context.Pipe()  # duplex: the runner answers RunnerReady
    process = context.Process(
        target=_worker_target,
        args=(child_conn, tuple(runs), str(runs_dir), str(cache_dir), os.getpid(),
              None if variant_cache_dir is None else str(variant_cache_dir), current_umask()),
        name=f"worker-{runs[0].run_id}",
        daemon=True,
    )
    process.start()
    child_conn.close()
    return process, parent_conn


def stop_worker(process: Any) -> None:
    """Stop the worker and every process it started: SIGTERM to its process group (each worker
    leads its own, see worker_entry), SIGKILL after a grace period, then SIGKILL to what is left
    of the group (a tokenizer or thread-pool helper the worker started), and wait for it."""
    if process is None or process.pid is None:
        return
    pid = process.pid
    if process.is_alive():
        _signal_worker(process, signal.SIGTERM)
        process.join(KILL_GRACE_S)
        if process.is_alive():
            _signal_worker(process, signal.SIGKILL)
            process.join(KILL_GRACE_S)
    _kill_group(pid)


def _signal_worker(process: Any, sig: int) -> None:
    """sig to the worker's group where it leads one (it may not yet, just started), else to it."""
    try:
        if os.getpgid(process.pid) == process.pid:
            os.killpg(process.pid, sig)
            return
    except (ProcessLookupError, PermissionError):
        pass
    with contextlib.suppress(ProcessLookupError):
        os.kill(process.pid, sig)


def _kill_group(pgid: int) -> None:
    """SIGKILL what is left of an ended worker's group, and wait (a little) until it is gone.
    Once its leader is gone a group id can be reused only by a new process leading a new group:
    where a live process holds that id, the group is not the worker's any more, and is left."""
    if process_alive(pgid):
        return
    deadline = time.monotonic() + KILL_GRACE_S
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            return
        if not _group_members(pgid):
            return
        time.sleep(0.02)


def _group_members(pgid: int) -> list[int]:
    """Live (not zombie) processes in the group, from /proc."""
    members = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            in_group = os.getpgid(int(entry)) == pgid
        except OSError:  # gone since the listing
            continue
        if in_group and process_alive(int(entry)):
            members.append(int(entry))
    return members


def death_reason(exitcode: int | None) -> str:
    if exitcode is None:
        return "the worker stopped answering"
    if exitcode < 0:
        name = signal.Signals(-exitcode).name
        hint = " (out of memory?)" if name == "SIGKILL" else ""
        return f"the worker died from signal {name}{hint}; see the run's worker.log"
    return f"the worker exited with status {exitcode} without a result; see the run's worker.log"


def current_umask() -> int | None:
    """This process's umask, read from /proc without setting it: os.umask can only set it, and
    setting then restoring it would give a file created meanwhile by another thread of the
    runner the wrong mode. None where the kernel does not show it (before Linux 4.7): the worker
    keeps its own, and the session's files are still created private (core.session.guard)."""
    try:
        with open("/proc/self/status") as status:
            return next((int(line.split()[1], 8) for line in status
                         if line.startswith("Umask:")), None)
    except OSError:
        return None


def _forkserver_ready() -> None:
    """Runs in a process forked by the forkserver, which happens only once it has preloaded."""


def _worker_target(conn, runs, runs_dir, cache_dir, runner_pid, variant_cache_dir, umask):
    from energy_console.core.worker.entry import worker_entry

    if umask is not None:
        os.umask(umask)
    worker_entry(conn, runs, runs_dir, cache_dir, runner_pid, variant_cache_dir)

"""Starting, stopping and reading the fate of worker processes (the runner's side).

Workers fork from a forkserver that preloaded torch and transformers (no CUDA initialised there),
so each run starts in a clean process without paying the imports again.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
from pathlib import Path
from typing import Any

KILL_GRACE_S = 3.0


def forkserver_context() -> Any:
    """A forkserver context whose server has finished its preload: call it before the idle
    baseline, so the imports neither load the idle machine nor delay the first run."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["energy_console.core.preload"])
    ready = context.Process(target=_forkserver_ready, name="forkserver-warmup")
    ready.start()
    ready.join()
    return context


def start_worker(context: Any, spec: Any, run_dir: Path, cache_dir: Path) -> tuple[Any, Any]:
    """(process, the runner's end of its pipe) for one run; the worker dies with this process."""
    parent_conn, child_conn = context.Pipe(duplex=False)
    process = context.Process(
        target=_worker_target,
        args=(child_conn, spec, str(run_dir), str(cache_dir), os.getpid()),
        name=f"worker-{spec.run_id}",
        daemon=True,
    )
    process.start()
    child_conn.close()
    return process, parent_conn


def stop_worker(process: Any) -> None:
    """SIGTERM, then SIGKILL after a grace period."""
    if process is None or not process.is_alive():
        return
    process.terminate()
    process.join(KILL_GRACE_S)
    if process.is_alive():
        process.kill()
        process.join(KILL_GRACE_S)


def death_reason(exitcode: int | None) -> str:
    if exitcode is None:
        return "the worker stopped answering"
    if exitcode < 0:
        name = signal.Signals(-exitcode).name
        hint = " (out of memory?)" if name == "SIGKILL" else ""
        return f"the worker died from signal {name}{hint}; see the run's worker.log"
    return f"the worker exited with status {exitcode} without a result; see the run's worker.log"


def _forkserver_ready() -> None:
    """Runs in a process forked by the forkserver, which happens only once it has preloaded."""


def _worker_target(conn, spec, run_dir, cache_dir, runner_pid):
    from energy_console.core.worker import worker_entry

    worker_entry(conn, spec, run_dir, cache_dir, runner_pid)

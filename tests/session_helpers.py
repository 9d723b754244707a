"""Helpers for tests that run real sessions (real runner, real worker processes)."""

from __future__ import annotations

import contextlib
import gc
import io
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

import psutil
import pytest

ROOT = Path(__file__).resolve().parent.parent

# The CPU estimate's TDP, fixed so that no figure depends on this machine's core count: every
# estimated CPU power lies in [IDLE_FRACTION x TEST_CPU_TDP_W, TEST_CPU_TDP_W].
TEST_CPU_TDP_W = 20.0

FAST_PROTOCOL = """\
protocol:
  idle_seconds: 0.3
  warmup: 1
  min_window_s: 0.2
  repeats: 2
  sample_hz: 20
  threads: 1
"""


def write_profile(folder: Path, body: str, name: str = "t", protocol: str = FAST_PROTOCOL) -> Path:
    """A CPU profile with the test TDP; `body` names models, techniques and inputs."""
    path = folder / f"{name}.yaml"
    path.write_text(f"name: {name}\ndevice: cpu\nsensors: {{cpu_tdp_w: {TEST_CPU_TDP_W}}}\n"
                    f"{body}{protocol}")
    return path


PLAIN_CNN_MODULE = """\
import torch


class PlainCNN(torch.nn.Module):
    def __init__(self, num_classes=4):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 8, 3, padding=1)
        self.head = torch.nn.Linear(8, num_classes)

    def forward(self, pixels):
        return self.head(torch.relu(self.conv(pixels)).mean((2, 3)))
"""


def write_plain_torch_profile(folder: Path, techniques: str = "[baseline, dynamic-int8]",
                              resolutions: str = "[32]", protocol: str = FAST_PROTOCOL) -> Path:
    """A profile of a plain torch CNN (`factory:`, its module written beside the profile), one
    run per technique and resolution: for tests whose session runs in a runner process of its
    own, whose forkserver then imports torch but not transformers (4 CPU-s less each)."""
    (folder / "plaincnn.py").write_text(PLAIN_CNN_MODULE)
    return write_profile(folder, f"""\
models:
  - factory: plaincnn:PlainCNN
    task: image-classification
    input_shape: [3, 32, 32]
techniques: {techniques}
inputs: {{batch_sizes: [1], resolutions: {resolutions}}}
""", protocol=protocol)


def cli_run_command(*args: str) -> list[str]:
    """`energy-console run ARGS` as a command line."""
    return [sys.executable, "-m", "energy_console.core.cli", "run", *args]


def run_cli(*args: str, timeout_s: float = 300) -> subprocess.CompletedProcess:
    """`energy-console run ARGS` to its end."""
    return subprocess.run(cli_run_command(*args), cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout_s)


def cli_here(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """`energy-console ARGS` to its end in this process, through the console script's main():
    the same parsing, output and exit status (argparse's exits included) without a new
    interpreter importing the CLI again. `env`: variables set while it runs. For `run`, see
    run_cli_here."""
    from energy_console.tui.main import main

    out, err = io.StringIO(), io.StringIO()
    umask = os.umask(0o022)  # `run` sets the session's umask for its process: put it back after
    os.umask(umask)
    with pytest.MonkeyPatch.context() as patch:
        for name, value in (env or {}).items():
            patch.setenv(name, value)
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                try:
                    code = main(list(args))
                except SystemExit as exit_:  # as the interpreter turns it into a status
                    code = exit_.code if isinstance(exit_.code, int) else (
                        0 if exit_.code is None else 1)
        finally:
            os.umask(umask)
    return subprocess.CompletedProcess(["energy-console", *args], code, out.getvalue(),
                                       err.getvalue())


def run_cli_here(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """`energy-console run ARGS` to its end in this process: the same command (parsing,
    pre-flight, exit status, what it prints), without a new interpreter and a new forkserver that
    import torch again (its workers fork from this process's forkserver, started once per test
    process). `env`: variables set while it runs, for the runner's side only. Only where the test
    needs no runner process of its own: no signal or kill sent to it (a Ctrl-C sent to this
    process is the runner's while it runs) and no environment its workers must read (they inherit
    the forkserver's). Its workers create files with the session's umask, as in a process of
    its own."""
    return cli_here("run", *args, env=env)


Acted = TypeVar("Acted")


def run_cli_here_while(act: Callable[[], Acted], session_dir: Path, *args: str,
                       env: dict[str, str] | None = None
                       ) -> tuple[subprocess.CompletedProcess, Acted]:
    """run_cli_here(ARGS) with `act()` running meanwhile on a thread of its own: what a test does
    from outside to a session it started (wait for its events, kill a worker, write its control
    file, send the runner a signal with os.kill(os.getpid(), ...), damage its folder). Returns
    the command's result and what `act` returned. An exception of `act` is raised once the
    session has ended; it first asks the session (`session_dir`) to stop, so that a test that
    fails does not wait for the rest of the plan. Same limits as run_cli_here."""

    def stop_on_failure(acting) -> None:
        if acting.exception() is not None:  # never waits: a FIFO there without a reader refuses
            with contextlib.suppress(OSError):
                fd = os.open(session_dir / "control",
                             os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NONBLOCK, 0o600)
                try:
                    os.write(fd, b"stop\n")
                finally:
                    os.close(fd)

    with ThreadPoolExecutor(max_workers=1) as pool:
        acting = pool.submit(act)
        acting.add_done_callback(stop_on_failure)
        done = run_cli_here(*args, env=env)
        return done, acting.result()


def start_cli_session(profile: Path, session_dir: Path) -> subprocess.Popen:
    """`energy-console run` as a user would start it, in its own process."""
    return subprocess.Popen(
        cli_run_command(str(profile), "--session-dir", str(session_dir), "--quiet"),
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True,  # its own process group, as a terminal's foreground job has
    )


def read_events(session_dir: Path) -> list[dict]:
    path = session_dir / "events.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def wait_for_event(session_dir: Path, predicate, timeout_s: float = 120.0) -> dict:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for event in read_events(session_dir):
            if predicate(event):
                return event
        time.sleep(0.05)
    raise TimeoutError(f"no matching event in {session_dir} after {timeout_s} s")


def wait_for_first_warmup(session_dir: Path) -> dict:
    """Wait until the first run's worker is warming up; returns its run_started event."""
    started = wait_for_event(session_dir, lambda e: e["kind"] == "run_started")
    wait_for_event(session_dir, lambda e: e["kind"] == "phase" and e["phase"] == "warmup")
    return started


def wait_gone(pids, timeout_s: float = 10.0) -> list[int]:
    """Wait until none of the pids is alive; returns the ones still alive."""
    deadline = time.monotonic() + timeout_s
    alive = list(pids)
    while alive and time.monotonic() < deadline:
        alive = [p for p in alive if psutil.pid_exists(p) and not _zombie(p)]
        time.sleep(0.1)
    return alive


def _zombie(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def send_gc_state(conn) -> None:
    """In a worker forked from a session's forkserver: (objects frozen, objects the collector
    walks) through `conn`."""
    conn.send((gc.get_freeze_count(), len(gc.get_objects())))
    conn.close()

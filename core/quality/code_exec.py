"""pass@1 for code prompts with tests: run one completion against its HumanEval-style task in a
sandboxed subprocess.

A task is a JSONL object with `prompt` (the function header the model completes), `entry_point`
(the function's name) and `test` (Python source defining `check(candidate)`, which raises when the
candidate is wrong). The program run is prompt + completion + test + `check(entry_point)`, as
HumanEval's harness builds it; exit status 0 means passed.

The sandbox, and its limits:
- `python -I` (isolated mode: no user site, no PYTHON* variables, no cwd on sys.path), the same
  interpreter as the worker, in a fresh temporary folder as cwd (deleted afterwards), with a
  minimal environment (PATH, LANG, HOME and TMPDIR pointing at that folder);
- its own session and process group; after the wall-clock timeout (10 s by default) the whole
  group is killed with SIGKILL, and so is any leftover of a program that ended; it also gets
  SIGKILL when the worker that started it dies (PR_SET_PDEATHSIG);
- resource limits set before exec: CPU seconds (timeout + 1), address space 1 GiB, 64 open
  files, 16 MiB per written file, and a cap on processes (NPROC) where it can be set without
  touching the user's other processes;
- no network: the program runs in a new network namespace (only a loopback that is down) and a
  new PID namespace (when its first process ends the kernel ends every other one, even those
  that left the process group), through util-linux `unshare` — as root `unshare --net --pid`,
  dropping to uid/gid 65534 (nobody) with `setpriv` where that works; otherwise in a user
  namespace (`unshare --user --map-root-user --net`). When none of these starts, the program runs
  without network isolation and every result says so (`network_isolated: False`).
Not isolated: the file system (the program can read what the worker's user can read, and write
where that user can write), the CPU and memory of the machine within the limits above. It is a
guard against accidents of generated code (loops, crashes, stray sockets), not a jail for hostile
code; run untrusted models in a container or VM.
"""

from __future__ import annotations

import contextlib
import functools
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import psutil

DEFAULT_TIMEOUT_S = 10.0
OUTPUT_LIMIT = 4096  # characters of stdout / stderr kept per run
MEMORY_LIMIT = 1 << 30  # RLIMIT_AS, bytes
FILE_LIMIT = 16 << 20  # RLIMIT_FSIZE, bytes
OPEN_FILES = 64  # RLIMIT_NOFILE
EXTRA_PROCESSES = 32  # RLIMIT_NPROC above what the sandbox user already runs
NOBODY = 65534
# HumanEval's stop sequences: a greedy completion is cut where the function body ends.
STOP_SEQUENCES = ("\nclass", "\ndef", "\n#", "\nif", "\nprint")

Status = Literal["passed", "failed", "timeout", "error"]


@dataclass(frozen=True)
class CodeTask:
    """One HumanEval-style task."""

    prompt: str
    entry_point: str
    test: str
    task_id: str = ""


@dataclass(frozen=True)
class ExecResult:
    """What one completion did against its task. Only `passed` counts for pass@1: a timeout or
    an error is a failure."""

    passed: bool
    status: Status  # passed | failed (check raised, crash, limit hit) | timeout | error (no run)
    seconds: float
    detail: str  # the last line of stderr, the signal, or why it could not run
    network_isolated: bool
    stdout: str = ""
    stderr: str = ""
    pid: int | None = None  # of the first process; also its process group and session id


@dataclass(frozen=True)
class Sandbox:
    """How programs are started here: the command prefix before `python -I FILE`."""

    prefix: tuple[str, ...]
    network_isolated: bool
    as_nobody: bool
    how: str  # a phrase for the README / warnings


def program_text(task: CodeTask, completion: str) -> str:
    """prompt + completion + test + check(entry_point), HumanEval's layout."""
    return (f"{task.prompt}{completion}\n\n{task.test}\n\n"
            f"check({task.entry_point})\n")


def truncate_completion(completion: str) -> str:
    """The completion up to the first HumanEval stop sequence (a new top-level block)."""
    cut = len(completion)
    for stop in STOP_SEQUENCES:
        at = completion.find(stop)
        if at != -1:
            cut = min(cut, at)
    return completion[:cut]


@functools.lru_cache(maxsize=4)
def sandbox(python: str = sys.executable) -> Sandbox:
    """The most isolated way to start `python` that works on this machine (probed once)."""
    unshare, setpriv = shutil.which("unshare"), shutil.which("setpriv")
    candidates: list[Sandbox] = []
    if unshare:
        ns = (unshare, "--net", "--pid", "--fork", "--kill-child")
        if os.geteuid() == 0:
            if setpriv:
                candidates.append(Sandbox(
                    (*ns, "--", setpriv, f"--reuid={NOBODY}", f"--regid={NOBODY}",
                     "--clear-groups", "--"), True, True,
                    "unshare --net --pid, as nobody (setpriv)"))
            candidates.append(Sandbox((*ns, "--"), True, False, "unshare --net --pid, as root"))
            candidates.append(Sandbox((unshare, "--net", "--"), True, False,
                                      "unshare --net, as root"))
        user = (unshare, "--user", "--map-root-user")
        candidates.append(Sandbox((*user, "--net", "--pid", "--fork", "--kill-child", "--"),
                                  True, False, "unshare --user --net --pid"))
        candidates.append(Sandbox((*user, "--net", "--"), True, False, "unshare --user --net"))
    for candidate in candidates:
        if _starts(candidate, python):
            return candidate
    return Sandbox((), False, False, "no network isolation: util-linux `unshare` is missing or "
                   "namespaces are not allowed here")


def _starts(candidate: Sandbox, python: str) -> bool:
    # probe from a folder the sandbox user can enter; the interpreter must be reachable for it
    try:
        done = subprocess.run([*candidate.prefix, python, "-I", "-c", "pass"], cwd="/",
                              env=_environment("/tmp"), capture_output=True, timeout=20,
                              start_new_session=True)
    except (OSError, subprocess.SubprocessError):
        return False
    return done.returncode == 0


def _environment(home: str) -> dict[str, str]:
    return {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8",
            "HOME": home, "TMPDIR": home}


def _limits(timeout_s: float, nproc: int | None):
    cpu = int(timeout_s) + 1
    prctl = None
    with contextlib.suppress(OSError, AttributeError):
        import ctypes

        prctl = ctypes.CDLL("libc.so.6", use_errno=True).prctl

    def apply() -> None:  # runs in the child between fork and exec
        if prctl is not None:  # dies with the worker, even a worker killed by its timeout
            prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        for limit, value in ((resource.RLIMIT_CPU, cpu), (resource.RLIMIT_AS, MEMORY_LIMIT),
                             (resource.RLIMIT_NOFILE, OPEN_FILES),
                             (resource.RLIMIT_FSIZE, FILE_LIMIT), (resource.RLIMIT_CORE, 0)):
            _, hard = resource.getrlimit(limit)
            soft = value if hard == resource.RLIM_INFINITY else min(value, hard)
            resource.setrlimit(limit, (soft, soft if hard == resource.RLIM_INFINITY else hard))
        if nproc is not None:
            resource.setrlimit(resource.RLIMIT_NPROC, (nproc, nproc))

    return apply


def _process_cap(box: Sandbox) -> int | None:
    """RLIMIT_NPROC counts every process of the real uid: cap the sandbox user's at what it runs
    now plus EXTRA_PROCESSES. Not for root (exempt, and the limit would bind `unshare`)."""
    uid = NOBODY if box.as_nobody else os.getuid()
    if uid == 0:
        return None
    running = 0
    for proc in psutil.process_iter(["uids"]):
        with contextlib.suppress(psutil.Error, TypeError):
            running += proc.info["uids"].real == uid
    return running + EXTRA_PROCESSES


class _Drain(threading.Thread):
    """Reads a pipe to its end, keeping the first OUTPUT_LIMIT bytes."""

    def __init__(self, pipe) -> None:
        super().__init__(daemon=True)
        self.pipe, self.kept, self.dropped = pipe, bytearray(), 0

    def run(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            while chunk := self.pipe.read1(65536):
                room = OUTPUT_LIMIT - len(self.kept)
                self.kept += chunk[:max(room, 0)]
                self.dropped += max(len(chunk) - max(room, 0), 0)

    def text(self) -> str:
        text = self.kept.decode("utf-8", errors="replace")
        return text + (f"\n[… {self.dropped} more bytes]" if self.dropped else "")


def run_completion(task: CodeTask, completion: str, *, timeout_s: float = DEFAULT_TIMEOUT_S,
                   isolate_network: bool = True) -> ExecResult:
    """Run one completion against its task's `check`; never raises for the program's faults.

    `isolate_network=False` runs without the namespaces (tests compare the two)."""
    box = sandbox() if isolate_network else Sandbox((), False, False, "not asked for")
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="energy-console-exec-") as folder:
        root = Path(folder)
        program = root / "program.py"
        program.write_text(program_text(task, completion), encoding="utf-8")
        work = root / "work"  # cwd, HOME and TMPDIR; writable for the sandbox user
        work.mkdir()
        if box.as_nobody:
            root.chmod(0o755)
            program.chmod(0o644)
            work.chmod(0o777)
        try:
            proc = subprocess.Popen(
                [*box.prefix, sys.executable, "-I", str(program)], cwd=work,
                env=_environment(str(work)), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                stderr=subprocess.PIPE, start_new_session=True,
                preexec_fn=_limits(timeout_s, _process_cap(box)),  # noqa: PLW1509
            )
        except OSError as exc:
            return ExecResult(False, "error", time.monotonic() - start,
                              f"could not start {sys.executable}: {exc}", box.network_isolated)
        drains = [_Drain(proc.stdout), _Drain(proc.stderr)]
        for drain in drains:
            drain.start()
        timed_out = False
        try:
            code = proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            timed_out = True
        kill_group(proc)
        code = proc.wait()
        seconds = time.monotonic() - start
        for drain in drains:
            drain.join(timeout=5)
        stdout, stderr = drains[0].text(), drains[1].text()
    if timed_out:
        return ExecResult(False, "timeout", seconds, f"still running after {timeout_s:g} s; "
                          "killed", box.network_isolated, stdout, stderr, proc.pid)
    if code == 0:
        return ExecResult(True, "passed", seconds, "", box.network_isolated, stdout, stderr,
                          proc.pid)
    return ExecResult(False, "failed", seconds, _failure(code, stderr), box.network_isolated,
                      stdout, stderr, proc.pid)


def kill_group(proc: subprocess.Popen) -> None:
    """SIGKILL the program's process group and every descendant still found."""
    try:
        family = psutil.Process(proc.pid).children(recursive=True)
    except psutil.Error:
        family = []
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)  # start_new_session: its pgid is its pid
    for child in family:
        with contextlib.suppress(psutil.Error):
            child.kill()


def _failure(code: int, stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    if code < 0 or code > 128:
        number = -code if code < 0 else code - 128
        with contextlib.suppress(ValueError):
            name = signal.Signals(number).name
            hint = {"SIGXCPU": " (CPU time limit)", "SIGXFSZ": " (file size limit)",
                    "SIGKILL": " (killed)"}.get(name, "")
            return f"ended by {name}{hint}" + (f": {lines[-1][:200]}" if lines else "")
    return lines[-1][:300] if lines else f"exit status {code}"


@dataclass(frozen=True)
class PassAtOne:
    """pass@1 over a task set: the share of tasks whose (greedy) completion passes."""

    value: float
    tasks: int
    counts: dict[str, int]  # status -> tasks
    network_isolated: bool
    sandbox: str
    seconds: float
    results: tuple[ExecResult, ...]


def pass_at_1(tasks: list[CodeTask], completions: list[str], *,
              timeout_s: float = DEFAULT_TIMEOUT_S, truncate: bool = True) -> PassAtOne:
    """Each task against its one completion, in turn; timeouts and errors count as failed."""
    if len(tasks) != len(completions):
        raise ValueError(f"{len(tasks)} tasks but {len(completions)} completions")
    if not tasks:
        raise ValueError("pass@1 needs at least one task")
    start = time.monotonic()
    results = tuple(run_completion(task, truncate_completion(c) if truncate else c,
                                   timeout_s=timeout_s) for task, c in zip(tasks, completions,
                                                                           strict=True))
    counts: dict[str, int] = {}
    for result in results:
        counts[result.status] = counts.get(result.status, 0) + 1
    return PassAtOne(sum(r.passed for r in results) / len(results), len(results), counts,
                     all(r.network_isolated for r in results), sandbox().how,
                     time.monotonic() - start, results)

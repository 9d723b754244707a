"""pass@1 for code prompts with tests: run one completion against its HumanEval-style task in a
sandboxed subprocess.

A task is a JSONL object with `prompt` (the function header the model completes), `entry_point`
(the function's name) and `test` (Python source defining `check(candidate)`, which raises when the
candidate is wrong). The program run is prompt + completion + test + `check(entry_point)`, as
HumanEval's harness builds it; exit status 0 means passed.

The sandbox, and its limits:
- `python -I` (isolated mode: no user site, no PYTHON* variables, no cwd on sys.path), the same
  interpreter as the worker without its venv (the standard library only), in a fresh temporary
  folder as cwd (deleted afterwards), with a
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
  without network isolation and every result says so (`network_isolated: False`);
- private temporary folders: in the same namespaces a new mount namespace gives it an empty
  tmpfs of its own (64 MiB each) on /tmp, /var/tmp and /dev/shm, gone with the program; its
  own folder (program and cwd) is bound back in and deleted afterwards;
- no local sockets: a seccomp filter refuses socket(AF_UNIX, ...) (EACCES), so it cannot reach a
  filesystem or abstract socket of another program (x86-64 and aarch64; elsewhere it says so).
Not isolated: the rest of the file system (the program can read what the sandbox user can read,
and write where that user can write), the CPU and memory of the machine within the limits above.
It is a guard against accidents of generated code (loops, crashes, stray sockets and files), not
a jail for hostile code; run untrusted models in a container or VM.
"""

from __future__ import annotations

import contextlib
import dataclasses
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

import energy_console.core.quality.seccomp as seccomp
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
    private_tmp: bool = False  # its own /tmp, /var/tmp and /dev/shm
    inner: tuple[str, ...] = ()  # after the program's folder, with private_tmp
    local_sockets_refused: bool = False  # socket(AF_UNIX) fails in it (seccomp)

    def command(self, folder: Path, python: str, *args: str) -> list[str]:
        """How `python args` starts in this sandbox; `folder` holds work/, its cwd."""
        around = (*self.prefix, str(folder), *self.inner) if self.private_tmp else self.prefix
        return [*around, python, *args]


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


# The interpreter the programs run with: the one behind this venv's link. The programs need only
# the standard library, and a venv under /tmp would vanish behind the private /tmp.
SANDBOX_PYTHON = os.path.realpath(sys.executable)

# Run inside the new mount namespace, as its root: an empty tmpfs on /dev/shm, /tmp and /var/tmp;
# the program's own folder ($1, under the old /tmp) is bound into the new /tmp at the same path.
PRIVATE_TMP = (
    'set -e; folder=$1; shift; o=size=64m,mode=1777,nosuid,nodev; '
    'mount -t tmpfs -o $o tmpfs /dev/shm; mkdir /dev/shm/.folder; '
    'mount --bind "$folder" /dev/shm/.folder; mount -t tmpfs -o $o tmpfs /tmp; '
    'mkdir -p "$folder"; mount --move /dev/shm/.folder "$folder"; rmdir /dev/shm/.folder; '
    'mount -t tmpfs -o $o tmpfs /var/tmp; cd "$folder/work"; exec "$@"')


@functools.lru_cache(maxsize=4)
def sandbox(python: str = SANDBOX_PYTHON) -> Sandbox:
    """The most isolated way to start `python` that works on this machine (probed once)."""
    unshare, setpriv, sh = shutil.which("unshare"), shutil.which("setpriv"), shutil.which("sh")
    candidates: list[Sandbox] = []
    if unshare:
        ns = (unshare, "--net", "--pid", "--fork", "--kill-child")
        private = (unshare, "--mount", "--net", "--pid", "--fork", "--kill-child", "--", sh or "sh",
                   "-c", PRIVATE_TMP, "sandbox")
        nobody = (setpriv or "setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}",
                  "--clear-groups", "--")
        if os.geteuid() == 0:
            if setpriv and sh:
                candidates.append(Sandbox(private, True, True, "unshare --mount --net --pid, "
                                          "private /tmp, as nobody (setpriv)", True, nobody))
            if setpriv:
                candidates.append(Sandbox((*ns, "--", *nobody), True, True,
                                          "unshare --net --pid, as nobody (setpriv)"))
            candidates.append(Sandbox((*ns, "--"), True, False, "unshare --net --pid, as root"))
            candidates.append(Sandbox((unshare, "--net", "--"), True, False,
                                      "unshare --net, as root"))
        user = (unshare, "--user", "--map-root-user")
        if sh:
            candidates.append(Sandbox(
                (*user, "--mount", "--net", "--pid", "--fork", "--kill-child", "--", sh, "-c",
                 PRIVATE_TMP, "sandbox"), True, False,
                "unshare --user --mount --net --pid, private /tmp", private_tmp=True))
        candidates.append(Sandbox((*user, "--net", "--pid", "--fork", "--kill-child", "--"),
                                  True, False, "unshare --user --net --pid"))
        candidates.append(Sandbox((*user, "--net", "--"), True, False, "unshare --user --net"))
    refused = _local_sockets_refusable(python)
    for candidate in candidates:
        if _starts(candidate, python):
            if not refused:
                return candidate
            return dataclasses.replace(candidate, local_sockets_refused=True,
                                       how=candidate.how + ", no local sockets (seccomp)")
    return Sandbox((), False, False, "no network isolation: util-linux `unshare` is missing or "
                   "namespaces are not allowed here", local_sockets_refused=refused)


def _local_sockets_refusable(python: str) -> bool:
    """Whether the seccomp filter loads here and refuses an AF_UNIX socket (probed once)."""
    if seccomp.unix_socket_filter() is None:
        return False
    probe = ("import socket\ntry:\n    socket.socket(socket.AF_UNIX)\nexcept PermissionError:\n"
             "    raise SystemExit(0)\nraise SystemExit(3)\n")
    try:
        done = subprocess.run([python, "-I", "-c", probe], capture_output=True, timeout=20,
                              preexec_fn=_limits(20, None, local_sockets=True))  # noqa: PLW1509
    except (OSError, subprocess.SubprocessError):
        return False
    return done.returncode == 0


def _starts(candidate: Sandbox, python: str) -> bool:
    # probe from a folder the sandbox user can enter; the interpreter must be reachable for it
    with tempfile.TemporaryDirectory(prefix="energy-console-probe-") as folder:
        (Path(folder) / "work").mkdir()
        Path(folder).chmod(0o755)
        try:
            done = subprocess.run(candidate.command(Path(folder), python, "-I", "-c", "pass"),
                                  cwd="/", env=_environment("/tmp"), capture_output=True,
                                  timeout=20, start_new_session=True,
                                  preexec_fn=_limits(20, None))  # noqa: PLW1509
        except (OSError, subprocess.SubprocessError):
            return False
    return done.returncode == 0


def _environment(home: str) -> dict[str, str]:
    return {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8",
            "HOME": home, "TMPDIR": home}


def _limits(timeout_s: float, nproc: int | None, local_sockets: bool = False):
    """What the child applies between fork and exec: dying with the worker, the resource
    limits, and with `local_sockets` the seccomp filter refusing AF_UNIX sockets."""
    cpu = int(timeout_s) + 1
    prctl = None
    with contextlib.suppress(OSError, AttributeError):
        import ctypes

        prctl = ctypes.CDLL("libc.so.6", use_errno=True).prctl
    program = seccomp.unix_socket_filter() if local_sockets else None
    filter_call = seccomp.installer(program) if program else None

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
        if filter_call is not None and not seccomp.install(*filter_call):
            raise OSError("the seccomp filter could not be installed")

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
                box.command(root, SANDBOX_PYTHON, "-I", str(program)), cwd=work,
                env=_environment(str(work)), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                stderr=subprocess.PIPE, start_new_session=True,
                preexec_fn=_limits(timeout_s, _process_cap(box),  # noqa: PLW1509
                                   local_sockets=box.local_sockets_refused),
            )
        except OSError as exc:
            return ExecResult(False, "error", time.monotonic() - start,
                              f"could not start {SANDBOX_PYTHON}: {exc}", box.network_isolated)
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

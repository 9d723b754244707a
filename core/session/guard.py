"""What keeps a session's record safe when the machine is not: files private to the user who
measures, refusals that leave no empty session behind, a runner still measuring into a directory,
and writes on a disk that fills up.

A runner holds a small reserve file in its session; the first write that fails frees it and is
retried, so the run that just finished and the session's end still fit. A record that still
finds no room is printed whole to stderr (runner.log), never lost silently.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import stat
import sys
from collections.abc import Callable
from pathlib import Path

from energy_console.core.store import events as ev

RESERVE_NAME = ".space-reserve"
RESERVE_BYTES = 1 << 20  # freed when the disk fills, so the last records still fit
DISK_FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT)


PRIVATE_UMASK = 0o077  # the session's files: yours alone (0600, folders 0700)
GROUP_UMASK = 0o027  # in a results folder shared on purpose (setgid): the group reads them too


def keep_files_private(session_dir: Path) -> int:
    """From now on, what this process and its workers create is private to the user measuring
    (a session's notices, errors and profile are not for every user of a shared box); in a
    results folder shared on purpose, a setgid folder of a lab's group, the group may read it.
    The session folder, if already there (a view prepared it), gets the same mode. Returns the
    umask set."""
    parent = next((p for p in session_dir.parents if p.exists()), Path("/"))
    shared = bool(parent.stat().st_mode & stat.S_ISGID)
    mask = GROUP_UMASK if shared else PRIVATE_UMASK
    os.umask(mask)
    with contextlib.suppress(OSError):  # not ours, or gone: its files are still private
        if session_dir.is_dir() and session_dir.stat().st_uid == os.geteuid():
            session_dir.chmod(0o777 & ~mask)
    return mask


class WriteFailed(Exception):
    """A session file could not be written (the disk is full, read-only, failing)."""

    def __init__(self, path: Path, why: str, disk_full: bool, session: Path | None = None):
        """`session`: the session folder (by default the folder of `path`, or of its run)."""
        self.path, self.disk_full = path, disk_full
        what = "disk full" if disk_full else "write error"
        if session is None:
            session = path.parent if path.parent.name != "runs" else path.parent.parent
        super().__init__(f"{what}: cannot write {path} ({why}); free space there (or fix the "
                         f"file system), then {next_step(session)}")

    @classmethod
    def from_os_error(cls, path: Path, exc: OSError, session: Path | None = None
                      ) -> WriteFailed:
        where = Path(exc.filename) if isinstance(exc.filename, str) else path
        return cls(where, exc.strerror or str(exc), exc.errno in DISK_FULL_ERRNOS, session)


def next_step(session: Path) -> str:
    """What works after a failed write: resuming a session that started (its events hold its
    start), else starting again (a folder with nothing measured, or gone, cannot be resumed)."""
    try:
        started = (session / "events.jsonl").stat().st_size > 0
    except OSError:
        started = False
    if started:
        return f"continue with `energy-console run PROFILE --resume {session}`"
    return "start the session again: `energy-console run PROFILE`"


def undo_start(path: Path, before: set[str] | None, message: str) -> None:
    """A session that could write nothing of its start (a full disk): what this start made is
    removed (kept where not empty), so no empty session is left to be listed as waiting; a
    folder a view prepared is told why (record_refusal). `before`: the folder's entries before
    the start, None where it did not exist. A session that started (events written) is kept."""
    with contextlib.suppress(OSError):
        if (path / "events.jsonl").stat().st_size > 0:
            return
    with contextlib.suppress(OSError):
        for entry in path.iterdir():
            if before is not None and entry.name in before:
                continue
            with contextlib.suppress(OSError):
                if entry.is_dir() and not entry.is_symlink():
                    entry.rmdir()
                else:
                    entry.unlink()
    record_refusal(path, message)


def record_refusal(path: Path, message: str) -> ev.SessionFinished | None:
    """A session that never started: a directory being resumed (it has events) is left as it
    is; an empty one made for this run is removed (views would take it for the newest session);
    one a view prepared and follows (profile.yaml, runner.log, no events yet) is told why.
    Returns the event written, if one was."""
    with contextlib.suppress(OSError):
        if path.is_dir() and not (path / "events.jsonl").exists():
            if not any(path.iterdir()):
                path.rmdir()
                return None
            event = ev.SessionFinished(status="failed", message=message, finished=0, skipped=0,
                                       failed=0)
            with (path / "events.jsonl").open("a", encoding="utf-8") as f:
                f.write(event.to_json() + "\n")
            return event
    return None


def live_runner(session_dir: Path) -> int | None:
    """The pid of a runner still measuring into session_dir (other than this process)."""
    import psutil

    try:
        info = json.loads((session_dir / "session.json").read_text(encoding="utf-8"))
        pid = int(info.get("runner_pid") or 0)
        started = float(info.get("started_at") or 0)
    except (OSError, ValueError, TypeError, AttributeError):
        return None
    if info.get("status") != "running" or pid <= 0 or pid == os.getpid():
        return None
    try:
        process = psutil.Process(pid)
        alive = process.status() != psutil.STATUS_ZOMBIE
        return pid if alive and process.create_time() <= started + 1 else None
    except psutil.Error:
        return None


class WriteGuard:
    """The runner's writes into one session: the reserve, retries, and the first failure."""

    def __init__(self, path: Path):
        self.path = path
        self.error: WriteFailed | None = None  # the first write that failed; ends the session

    def write(self, name: str, write: Callable[[], None], retry: Callable[[], None] | None = None,
              keep: Callable[[], str] | None = None) -> bool:
        """Write, or note why not: the first failed write frees the reserve and is retried; a
        record that still finds no room goes to stderr (runner.log). The session ends after the
        run in progress (check() raises)."""
        try:
            write()
            return True
        except OSError as exc:
            failure = WriteFailed.from_os_error(self.path / name, exc, self.path)
        if self.error is None:
            self.error = failure
        self.release_reserve()
        try:
            (retry or write)()
            return True
        except OSError:
            pass
        if keep:
            print(f"unsaved {name} record (the disk is full): {keep()}", file=sys.stderr,
                  flush=True)
        return False

    def check(self) -> None:
        if self.error:
            raise self.error

    def reserve_space(self) -> None:
        """Hold RESERVE_BYTES in the session, freed when the disk fills."""
        path = self.path / RESERVE_NAME
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
            try:
                try:
                    os.posix_fallocate(fd, 0, RESERVE_BYTES)
                except OSError as exc:
                    if exc.errno in DISK_FULL_ERRNOS:
                        raise
                    os.write(fd, bytes(RESERVE_BYTES))  # file systems without fallocate
            finally:
                os.close(fd)
        except OSError as exc:
            self.error = WriteFailed.from_os_error(path, exc, self.path)
            self.release_reserve()
            raise self.error from None

    def release_reserve(self) -> None:
        with contextlib.suppress(OSError):
            (self.path / RESERVE_NAME).unlink()

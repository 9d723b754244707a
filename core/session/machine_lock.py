"""One measuring session per machine: two sessions at once would measure each other.

The runner holds an exclusive flock on a lock file for its whole life; the kernel releases it when
the runner exits, however it exits. A refused session is told which runner is in the way (its pid
from /proc/locks, its session from the record the holder wrote into the file).

The lock file sits in a directory other users may write to (/run/lock, /tmp), and sessions often
run as root, so it is treated as hostile ground:
- opened with O_NOFOLLOW (a symlink at the path is refused, never followed) and O_NONBLOCK (a FIFO
  there cannot hang the open), then checked with fstat: a regular file with one name, owned by the
  caller or by root; its directory owned by the caller or root and, if others may write to it,
  sticky (so nobody else can swap the file);
- never chmodded, truncated or written unless this process holds the flock and the caller owns the
  file; the record is a fixed-size, space-padded block written in place (no truncation);
- created 0644 when missing: others may open it read-only, take the flock and read who holds it.

Where it lives (the first that applies): $ENERGY_CONSOLE_LOCK; /run/lock/energy-console.lock when
running as root and /run/lock exists, or for any user when a root session already created that
file (so a user's session and root's exclude each other); $XDG_RUNTIME_DIR/energy-console.lock
(a per-user directory); /tmp/energy-console.lock.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import pwd
import stat
from pathlib import Path

LOCK_ENV = "ENERGY_CONSOLE_LOCK"
LOCK_NAME = "energy-console.lock"
ROOT_LOCK_DIR = "/run/lock"
FALLBACK_LOCK_DIR = "/tmp"
DEFAULT_LOCK = f"{FALLBACK_LOCK_DIR}/{LOCK_NAME}"  # the last fallback (kept for older imports)
RECORD_SIZE = 512  # bytes of the holder record at the start of the file
_FIX = "set ENERGY_CONSOLE_LOCK to a file in a directory only you (or root) can write"


class MachineBusy(Exception):
    """Another session is measuring on this machine; str() names it and what to do."""


class LockRefused(MachineBusy):
    """The lock path is not safe to use (a link, a FIFO, someone else's file); str() says why."""


def default_lock_path() -> Path:
    """Where the lock lives when no path is given (see the module docstring)."""
    env = os.environ.get(LOCK_ENV)
    if env:
        return Path(env)
    shared = Path(ROOT_LOCK_DIR) / LOCK_NAME
    if os.geteuid() == 0 and os.path.isdir(ROOT_LOCK_DIR):
        return shared
    with contextlib.suppress(OSError):
        info = os.lstat(shared)
        if stat.S_ISREG(info.st_mode) and info.st_uid == 0:
            return shared  # a root session's lock: join it, so root and users exclude each other
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime and os.path.isabs(runtime):
        with contextlib.suppress(OSError):
            info = os.stat(runtime)
            if stat.S_ISDIR(info.st_mode) and info.st_uid == os.geteuid():
                return Path(runtime) / LOCK_NAME
    return Path(DEFAULT_LOCK)


class MachineLock:
    """An flock on one lock file. `shared`: held beside other shared holders (sessions that
    measure on disjoint GPUs, each holding its GPUs' own locks exclusively) and refused only
    by an exclusive holder; such a holder writes no record (several hold the file at once).
    `what` names what the file guards in a refusal ("this machine", "GPU 2")."""

    def __init__(self, path: str | Path | None = None, shared: bool = False,
                 what: str = "this machine"):
        self.path = Path(path) if path else default_lock_path()
        self.shared = shared
        self.what = what
        self._fd: int | None = None
        self._writable = False

    def acquire(self, session_dir: Path) -> None:
        """Take the lock or raise MachineBusy (held by another runner) / LockRefused (unsafe)."""
        for _ in range(5):
            fd, writable = self._open()
            try:
                fcntl.flock(fd, (fcntl.LOCK_SH if self.shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _describe_holder(fd)
                os.close(fd)
                raise MachineBusy(
                    f"another session is measuring on {self.what} ({holder}); runs at the same "
                    "time would measure each other. Wait for it, or stop it (`energy-console "
                    f"attach SESSION_DIR`, then x). Lock: {self.path}"
                ) from None
            if self._still_at_path(fd):
                break
            os.close(fd)  # the file was removed or replaced while we locked it: take the new one
        else:
            raise LockRefused(f"cannot take the machine lock {self.path}: the file keeps being "
                              f"replaced while it is locked; find what rewrites it, or {_FIX}")
        self._fd, self._writable = fd, writable and not self.shared
        if self._writable:  # flock held, file checked and ours: record who holds it, in place
            _write_record(fd, {"pid": os.getpid(), "uid": os.geteuid(),
                               "session": str(session_dir)})

    def release(self) -> None:
        if self._fd is not None:
            if self._writable:
                with contextlib.suppress(OSError):
                    os.pwrite(self._fd, _pad(b""), 0)  # blank the record; never truncate
            os.close(self._fd)  # closing the descriptor drops the flock
            self._fd = None

    # ------------------------------------------------------------------ checks
    def _refuse(self, why: str, fix: str = "") -> LockRefused:
        return LockRefused(f"cannot take the machine lock {self.path}: {why}; "
                           f"{fix + ', or ' if fix else ''}{_FIX}")

    def _open(self) -> tuple[int, bool]:
        """A checked descriptor on the lock file (created if missing) and whether we may write."""
        parent, name = str(self.path.parent), self.path.name
        try:
            dir_fd = os.open(parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError as exc:
            raise self._refuse(f"its directory cannot be opened ({exc.strerror})") from None
        try:
            self._check_dir(os.fstat(dir_fd), parent)
            fd, created = self._open_in(dir_fd, name)
        finally:
            os.close(dir_fd)
        try:
            info = os.fstat(fd)
            self._check_file(info)
            if created:
                os.fchmod(fd, 0o644)  # our own new file: readable by all despite the umask
            writable = info.st_uid == os.geteuid() and _is_writable(fd)
        except BaseException:
            os.close(fd)
            raise
        return fd, writable

    def _open_in(self, dir_fd: int, name: str) -> tuple[int, bool]:
        base = os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK | os.O_NOCTTY
        try:
            return os.open(name, base | os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644,
                           dir_fd=dir_fd), True
        except FileExistsError:
            pass
        except OSError as exc:
            raise self._refuse(f"it cannot be created ({exc.strerror})") from None
        for flags in (os.O_RDWR, os.O_RDONLY):  # root's shared lock is read-only to users
            try:
                return os.open(name, base | flags, dir_fd=dir_fd), False
            except PermissionError:
                continue
            except OSError as exc:
                raise self._refuse(self._open_problem(exc, dir_fd, name),
                                   f"remove it (`rm {self.path}`)") from None
        raise self._refuse("you may not read it (permission denied)",
                           f"ask its owner to remove it (`rm {self.path}`)")

    def _open_problem(self, exc: OSError, dir_fd: int, name: str) -> str:
        if exc.errno == errno.ELOOP:
            try:
                target = os.readlink(name, dir_fd=dir_fd)
            except OSError:
                target = "?"
            return (f"it is a symbolic link (to {_printable(target)}); a lock file is never "
                    "followed through a link, since a link there could point at any file")
        if exc.errno == errno.EISDIR:
            return "it is a directory, not a lock file"
        return f"it cannot be opened ({exc.strerror})"

    def _check_dir(self, info: os.stat_result, parent: str) -> None:
        if info.st_uid not in (os.geteuid(), 0):
            raise self._refuse(f"its directory {parent} belongs to {_user(info.st_uid)}, who could "
                               "replace the file")
        if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH) and not info.st_mode & stat.S_ISVTX:
            mode = f"{stat.S_IMODE(info.st_mode):o}"
            raise self._refuse(f"others may write to its directory {parent} and it is not sticky "
                               f"(mode {mode}), so they could replace the file")

    def _check_file(self, info: os.stat_result) -> None:
        if not stat.S_ISREG(info.st_mode):
            raise self._refuse(f"it is {_kind(info.st_mode)}, not a regular file",
                               f"remove it (`rm -r {self.path}`)")
        if info.st_uid not in (os.geteuid(), 0):
            raise self._refuse(f"the file belongs to {_user(info.st_uid)}, not to you or root, so "
                               "its content cannot be trusted",
                               f"ask them (or root) to remove it (`rm {self.path}`)")
        if info.st_nlink != 1:
            raise self._refuse(f"the file has {info.st_nlink} names (hard links); a lock file has "
                               "one", f"remove it (`rm {self.path}`)")

    def _still_at_path(self, fd: int) -> bool:
        try:
            here, held = os.lstat(self.path), os.fstat(fd)
        except OSError:
            return False
        return (here.st_dev, here.st_ino) == (held.st_dev, held.st_ino)


# ------------------------------------------------------------------ the holder record


def _pad(data: bytes) -> bytes:
    return data[: RECORD_SIZE - 1].ljust(RECORD_SIZE - 1) + b"\n"


def _write_record(fd: int, record: dict) -> None:
    data = json.dumps(record).encode()
    if len(data) >= RECORD_SIZE:  # a very long session path: keep the pid, shorten the path
        record = dict(record, session="…" + str(record["session"])[-(RECORD_SIZE // 2):])
        data = json.dumps(record).encode()
    with contextlib.suppress(OSError):  # the record only helps messages; the flock is the lock
        os.pwrite(fd, _pad(data), 0)


def _read_record(fd: int) -> dict:
    try:
        record = json.loads(os.pread(fd, RECORD_SIZE, 0).strip() or b"{}")
    except (ValueError, OSError):
        return {}
    return record if isinstance(record, dict) else {}


def _describe_holder(fd: int) -> str:
    """Who holds the flock on fd: the kernel's pid, and the session the holder recorded."""
    pid = _flock_holder_pid(fd)
    record = _read_record(fd)
    recorded = record.get("pid")
    if pid is None and isinstance(recorded, int) and not isinstance(recorded, bool):
        pid = recorded
    if pid is None:
        return "holder unknown"
    out = f"runner pid {pid}"
    with contextlib.suppress(OSError):
        out += f" of user {_user(os.stat(f'/proc/{pid}').st_uid)}"
    if recorded == pid and record.get("session"):
        out += f", session {_printable(str(record['session']))}"
    return out


def _flock_holder_pid(fd: int) -> int | None:
    """The pid /proc/locks gives for the flock on fd's file, if this system shows it."""
    info = os.fstat(fd)
    inode = f"{os.major(info.st_dev):02x}:{os.minor(info.st_dev):02x}:{info.st_ino}"
    try:
        with open("/proc/locks", "rb") as locks:
            for line in locks.read().decode("utf-8", "replace").splitlines():
                parts = line.split()
                if len(parts) >= 6 and parts[1] == "FLOCK" and parts[5] == inode:
                    pid = int(parts[4])
                    return pid if pid > 0 else None
    except (OSError, ValueError):
        pass
    return None


def _is_writable(fd: int) -> bool:
    return fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_ACCMODE == os.O_RDWR


def _printable(text: str, limit: int = 300) -> str:
    """Text from a file others may have written, safe to print: no control characters."""
    clean = "".join(c if c.isprintable() else "?" for c in text)
    return clean if len(clean) <= limit else clean[:limit] + "…"


def _user(uid: int) -> str:
    try:
        return f"{pwd.getpwuid(uid).pw_name} (uid {uid})"
    except KeyError:
        return f"uid {uid}"


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
                       (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISLNK, "a symbolic link")):
        if test(mode):
            return name
    return "not a regular file"

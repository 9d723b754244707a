"""One measuring session per machine: two sessions at once would measure each other.

The runner holds an exclusive flock on a machine-wide file for its whole life; the kernel releases
it when the runner exits, however it exits. The file names the holder, so a refused session can
say which session is in the way.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from pathlib import Path

LOCK_ENV = "ENERGY_CONSOLE_LOCK"
DEFAULT_LOCK = "/tmp/energy-console.lock"


class MachineBusy(Exception):
    """Another session is measuring on this machine; str() names it and what to do."""


class MachineLock:
    def __init__(self, path: str | Path | None = None):
        self.path = Path(path or os.environ.get(LOCK_ENV) or DEFAULT_LOCK)
        self._fd: int | None = None

    def acquire(self, session_dir: Path) -> None:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_holder(fd)
            os.close(fd)
            raise MachineBusy(
                f"another session is measuring on this machine ({holder}); runs at the same "
                "time would measure each other. Wait for it, or stop it (`energy-console attach "
                "SESSION_DIR`, then x)"
            ) from None
        with contextlib.suppress(PermissionError):
            os.fchmod(fd, 0o666)  # other users' sessions must be able to take it next
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps({"pid": os.getpid(), "session": str(session_dir)}).encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            os.close(self._fd)  # closing the descriptor drops the flock
            self._fd = None


def _read_holder(fd: int) -> str:
    try:
        holder = json.loads(os.pread(fd, 4096, 0) or b"{}")
        return f"runner pid {holder['pid']}, session {holder['session']}"
    except (ValueError, KeyError, OSError):
        return "holder unknown"

"""The locks a session holds: the whole machine, or only its GPUs.

A session without `--gpus` holds the machine lock exclusively, as always: nothing else measures
beside it. A session on a set of GPUs holds the machine lock *shared* and one lock file per GPU
exclusively (`energy-console.lock.gpu2` beside the machine lock), so two sessions on disjoint GPUs
run at once, a second session on a GPU already measured is refused, and a whole-machine session
excludes both. A profile with `exclusive: true` (its CPU energy matters) takes the machine lock
exclusively even on a GPU set: no other session's runs load the CPU under it.

Every file is opened with MachineLock's checks (no links, no FIFOs, no one else's files).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from energy_console.core.session.machine_lock import MachineLock, default_lock_path


def gpu_lock_path(machine_lock: Path, index: int) -> Path:
    """The lock file of GPU `index`, beside the machine lock."""
    return machine_lock.with_name(f"{machine_lock.name}.gpu{index}")


class SessionLocks:
    """Take with acquire() (raises MachineBusy / LockRefused, holding nothing); release() once."""

    def __init__(self, gpus: Sequence[int] | None = None, exclusive: bool = False,
                 path: str | Path | None = None):
        base = Path(path) if path else default_lock_path()
        whole_machine = gpus is None or exclusive
        self.locks = [MachineLock(base, shared=not whole_machine)]
        for index in sorted(set(gpus or ())):  # one order for every session: no lock cycles
            self.locks.append(MachineLock(gpu_lock_path(base, index), what=f"GPU {index}"))

    def acquire(self, session_dir: Path) -> None:
        held: list[MachineLock] = []
        try:
            for lock in self.locks:
                lock.acquire(session_dir)
                held.append(lock)
        except BaseException:
            for lock in reversed(held):
                lock.release()
            raise

    def release(self) -> None:
        for lock in reversed(self.locks):
            lock.release()

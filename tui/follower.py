"""The live view's follower thread: polls a session directory through core.follow and hands the
UI one frozen snapshot at most every `interval_s`, when it differs from the one handed before
(a running session's differs each time: its elapsed time). The thread never touches widgets."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

from energy_console.core.store.follow import SessionReader
from energy_console.core.store.snapshot import LiveSnapshot


class SessionFollower(threading.Thread):
    """Polls a session directory and calls `deliver(snapshot)` at most every interval_s, when
    the snapshot changed."""

    def __init__(self, path: Path, deliver: Callable[[LiveSnapshot], object],
                 interval_s: float = 0.25, runner_pid: int | None = None):
        super().__init__(name=f"follow {Path(path).name}", daemon=True)
        self.reader = SessionReader(path)
        if runner_pid:
            self.reader.model.info["runner_pid"] = runner_pid
        self.deliver = deliver
        self.interval_s = interval_s
        self._stop_event = threading.Event()

    def run(self) -> None:
        delivered = None
        while not self._stop_event.is_set():
            while self.reader.read_some() and not self._stop_event.is_set():
                pass  # catching up with a long session: read on before drawing
            snapshot = self.reader.snapshot()
            if snapshot != delivered:  # an ended session is drawn once, not 4 times a second
                self.deliver(snapshot)
                delivered = snapshot
            self._stop_event.wait(self.interval_s)

    def stop(self) -> None:
        self._stop_event.set()

"""The runner's stop: Ctrl-C, a hang-up or `stop` in the control file set a flag; the run in
progress is cancelled (the console is told once that a second Ctrl-C ends it at once), and the
runs not started are recorded as skipped in one go. Also the control file's `cancel RUN_ID`.
"""

from __future__ import annotations

import signal
import threading
import time

from energy_console.core.store import events as ev
from energy_console.core.store.control import ControlReader

STOPPED_BEFORE = "session stopped before this run"
INTERRUPTED = "session interrupted (a second Ctrl-C) before this run ended"
STOPPING = ("stopping: the run in progress is being cancelled and the runs not started are "
            "recorded as skipped; a second Ctrl-C (where the runner runs) ends it at once")


class StopControl:
    """Mixed into the Runner, which sets these attributes."""

    stop_requested: bool
    _stop_told: bool  # the STOPPING notice was emitted
    control: ControlReader
    _control_lock: threading.Lock
    _cancels: set[str]
    _active: dict[str, tuple[str, float]]
    _main_records: int
    _interrupt_pending: bool

    def emit(self, event: ev.Event) -> None:
        raise NotImplementedError

    def request_stop(self) -> None:
        self.stop_requested = True

    def _on_signal(self, signum, frame) -> None:
        """Stop cleanly: the current run is cancelled, the rest recorded as skipped. A second
        Ctrl-C stops at once (what was written stays written; a record being written is
        finished first)."""
        if signum == signal.SIGINT and self.stop_requested:
            if self._main_records:
                self._interrupt_pending = True
                return
            raise KeyboardInterrupt
        self.stop_requested = True  # only a flag: a handler must not write mid-write

    def pause(self, seconds: float) -> None:
        """Wait, still answering stop requests."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and not self.stop_requested:
            self.poll_control()
            time.sleep(min(0.1, max(0.0, deadline - time.monotonic())))

    def poll_control(self, run_id: str | None = None) -> str | None:
        """Apply stop/cancel commands; returns a reason when the run `run_id` is cancelled.
        Lanes poll in turn; a cancel is kept until the lane of its run (if running) sees it."""
        with self._control_lock:
            for command in self.control.poll():  # checked commands: exact `stop`, `cancel ID`
                if command.action == "stop":
                    self.stop_requested = True
                elif command.action == "cancel" and command.run_id and (
                        command.run_id == run_id or command.run_id in self._active):
                    self._cancels.add(command.run_id)
                elif command.action == "ignored":
                    self.emit(ev.Notice(level="warning", message=command.reason, run_id=run_id))
            if self.stop_requested and not self._stop_told:
                self._stop_told = True
                self.emit(ev.Notice(level="warning", message=STOPPING, run_id=run_id))
            if run_id and run_id in self._cancels:
                self._cancels.discard(run_id)
                return "cancelled by the user"
        if self.stop_requested and run_id:
            return "session stopped during this run"
        return None

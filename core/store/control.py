"""The control file: how any view (the console, a script, a second SSH session) asks a session's
runner to `stop` or `cancel RUN_ID`. The runner reads it as untrusted input: exact commands only,
never blocking on it, and only when it is a regular file."""

from __future__ import annotations

import os
import stat
import time
from collections.abc import Iterator
from pathlib import Path

from energy_console.core.store.session_dir import is_safe_name

CONTROL_READ_BYTES = 64 * 1024  # at most this much of the control file per poll
CONTROL_LINE_BYTES = 1024  # longer lines are junk: no command is that long
CONTROL_NOTICE_EVERY_S = 10.0  # ignored input is reported at most this often


def send_control(path: Path, command: str) -> None:
    """Ask the runner of a session to `stop` or `cancel RUN_ID` (it polls the control file)."""
    with (path / "control").open("a", encoding="utf-8") as f:
        f.write(command.strip() + "\n")


class ControlCommand(str):
    """One line of the control file, checked: `action` is "stop", "cancel" (with `run_id`, the
    exact id of the run to cancel) or "ignored" (then `reason` says what was wrong and what to
    write instead). It is the line itself as a str."""

    action: str
    run_id: str | None
    reason: str

    @classmethod
    def parse(cls, line: str) -> ControlCommand:
        command = cls(line)
        command.run_id, command.reason = None, ""
        verb, space, target = line.partition(" ")
        if line == "stop":
            command.action = "stop"
        elif verb == "cancel" and space and is_safe_name(target):
            command.action, command.run_id = "cancel", target
        else:
            command.action = "ignored"
            command.reason = (f"ignored {line[:80]!r} in the control file; it takes `stop` or "
                              "`cancel RUN_ID` (the exact id), one per line")
        return command

    @classmethod
    def ignored(cls, reason: str) -> ControlCommand:
        command = cls("")
        command.action, command.run_id, command.reason = "ignored", None, reason
        return command


class ControlReader:
    """The runner's side of the control file: new commands since the last poll.

    The file sits in a directory others may write to, and the runner reads it for hours: it is
    opened without following links and without blocking (a FIFO in its place neither hangs the
    runner nor is read), anything but a regular file is ignored, each poll reads a bounded
    chunk, and lines that are not exactly a command (binary junk, invalid UTF-8, "cancelled")
    are ignored. What was ignored comes back as one "ignored" command at most every
    CONTROL_NOTICE_EVERY_S, for the runner to log.
    """

    def __init__(self, path: Path):
        self.file = path / "control"
        self._identity: tuple[int, int] | None = None
        self._offset = 0
        self._skipping = False  # inside an over-long line: drop bytes up to its newline
        self._ignored: list[str] = []
        self._ignored_count = 0
        self._last_notice = -CONTROL_NOTICE_EVERY_S
        self._refused_kind: str | None = None
        self._read(initial=True)  # commands written before the runner started are old news

    def poll(self) -> Iterator[ControlCommand]:
        lines = self._read()
        for line in lines:
            command = ControlCommand.parse(line)
            if command.action == "ignored":
                self._ignore(command.reason)
            else:
                yield command
        notice = self._notice()
        if notice is not None:
            yield notice

    # -------------------------------------------------------------- reading
    def _read(self, initial: bool = False) -> list[str]:
        try:
            fd = os.open(self.file, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC
                         | getattr(os, "O_NOCTTY", 0))
        except FileNotFoundError:
            self._identity, self._refused_kind = None, None
            return []
        except OSError as exc:  # a symbolic link (ELOOP), no permission, ...
            self._refuse(f"cannot be opened ({exc.strerror})")
            return []
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                self._refuse("is not a regular file")
                return []
            self._refused_kind = None
            identity = (info.st_dev, info.st_ino)
            if identity != self._identity or info.st_size < self._offset:
                # a new or truncated file: its commands are new (unless the runner just started)
                self._identity, self._skipping = identity, False
                self._offset = info.st_size if initial else 0
            if initial or info.st_size <= self._offset:
                return []
            data = os.pread(fd, CONTROL_READ_BYTES, self._offset)
        finally:
            os.close(fd)
        return self._lines(data)

    def _lines(self, data: bytes) -> list[str]:
        complete, newline, rest = data.rpartition(b"\n")
        if not newline:  # no complete line yet
            if len(data) > CONTROL_LINE_BYTES or (self._skipping and data):
                self._offset += len(data)  # a line too long to be a command: drop it
                self._skip_started()
            return []
        self._offset += len(complete) + 1
        raw = complete.split(b"\n")
        if self._skipping:  # the tail of an over-long line
            raw.pop(0)
            self._skipping = False
        lines = []
        for item in raw:
            item = item.removesuffix(b"\r")
            if len(item) > CONTROL_LINE_BYTES:
                self._ignore(f"ignored a line of {len(item)} bytes in the control file; it "
                             "takes `stop` or `cancel RUN_ID`, one per line")
                continue
            try:
                text = item.decode("utf-8").strip()
            except UnicodeDecodeError:
                self._ignore("ignored a line of the control file that is not UTF-8 text; it "
                             "takes `stop` or `cancel RUN_ID`, one per line")
                continue
            if text:
                lines.append(text)
        if len(rest) > CONTROL_LINE_BYTES:  # the start of an over-long line
            self._offset += len(rest)
            self._skip_started()
        return lines

    def _skip_started(self) -> None:
        if not self._skipping:
            self._ignore(f"ignored a line of over {CONTROL_LINE_BYTES} bytes in the control "
                         "file; it takes `stop` or `cancel RUN_ID`, one per line")
        self._skipping = True

    # -------------------------------------------------------------- reporting
    def _refuse(self, what: str) -> None:
        if self._refused_kind != what:  # once per kind of trouble, not every poll
            self._refused_kind = what
            self._ignore(f"{self.file} {what}, so it is ignored; remove it (rm {self.file}) and "
                         "send commands with the console or `echo stop >> FILE`")

    def _ignore(self, reason: str) -> None:
        self._ignored_count += 1
        if len(self._ignored) < 3:
            self._ignored.append(reason)

    def _notice(self) -> ControlCommand | None:
        now = time.monotonic()
        if not self._ignored_count or now - self._last_notice < CONTROL_NOTICE_EVERY_S:
            return None
        more = self._ignored_count - len(self._ignored)
        reason = "; ".join(self._ignored) + (f" (and {more} more)" if more > 0 else "")
        self._ignored, self._ignored_count, self._last_notice = [], 0, now
        return ControlCommand.ignored(reason)

"""Reading what a writer appends to a file, line by line, in bounded chunks."""

from __future__ import annotations

from pathlib import Path

READ_CHUNK_BYTES = 1 << 20  # bounded reads keep memory flat when attaching to a long session
MAX_LINE_BYTES = 1 << 20  # no event or sample line is near this long: longer ones are junk


class FileTail:
    """Complete lines appended to a file since the last read; a partial last line waits.

    A line that is not UTF-8 is decoded with replacement characters and counted in
    `not_utf8`; a line over MAX_LINE_BYTES is dropped and counted in `too_long`, so a file with
    no newline never grows the partial line without bound. `lines` counts every line so far."""

    def __init__(self, path: Path):
        self.path = path
        self._offset = 0
        self._partial = b""
        self._dropping = False  # inside a line that is too long: drop up to its newline
        self.lines = 0
        self.not_utf8: list[int] = []  # line numbers (the first few)
        self.too_long: list[int] = []

    def start_at_tail(self, max_bytes: int) -> int:
        """Before the first read: skip all but about the last max_bytes of the file, from the
        first line that starts in them (line numbers then count from there). Returns the bytes
        skipped (0 when the file is no longer than max_bytes, or missing)."""
        try:
            size = self.path.stat().st_size
        except OSError:
            return 0
        if self._offset or size <= max_bytes:
            return 0
        self._offset = size - max_bytes - 1
        self._dropping = True  # the line the skip lands in is dropped up to its newline
        return self._offset

    def start_after(self, offset: int, lines: int) -> None:
        """Before the first read: go on after the first `offset` bytes (`lines` lines), which
        were read already (a finished session's summary holds what they gave)."""
        self._offset, self.lines = offset, lines

    @property
    def partial_bytes(self) -> int:
        """Bytes of a last line without its newline (cut short, or still being written)."""
        return len(self._partial)

    def read_lines(self, max_bytes: int = READ_CHUNK_BYTES) -> tuple[list[str], bool]:
        """(new complete lines, whether more data is already waiting)."""
        try:
            with self.path.open("rb") as f:
                f.seek(self._offset)
                data = f.read(max_bytes)
                more = bool(data) and f.read(1) != b""
        except (FileNotFoundError, IsADirectoryError, PermissionError):
            return [], False
        self._offset += len(data)
        complete, newline, rest = (self._partial + data).rpartition(b"\n")
        if not newline:
            self._keep_partial(rest)
            return [], more
        raw = complete.split(b"\n")
        if self._dropping:  # the end of a line already counted as too long
            raw.pop(0)
            self._dropping = False
        self._keep_partial(rest)
        lines = []
        for item in raw:
            self.lines += 1
            try:
                lines.append(item.decode("utf-8"))
            except UnicodeDecodeError:
                note_line(self.not_utf8, self.lines)
                lines.append(item.decode("utf-8", errors="replace"))
        return lines, more

    def _keep_partial(self, rest: bytes) -> None:
        if self._dropping:
            self._partial = b""
        elif len(rest) > MAX_LINE_BYTES:
            self.lines += 1
            note_line(self.too_long, self.lines)
            self._partial, self._dropping = b"", True
        else:
            self._partial = rest


def note_line(numbers: list[int], number: int) -> None:
    if len(numbers) < 3:
        numbers.append(number)

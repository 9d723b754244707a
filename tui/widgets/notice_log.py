"""The live view's notices (warnings, skips, failures), newest last, wrapped to the width. The pane
is as tall as the newest notices that fit whole, so it never opens on the tail of a wrapped one;
older ones stay a scroll away."""

from __future__ import annotations

from typing import Any

from textual.widgets import RichLog

ROWS = 4  # notice rows at most (the top border aside)
NARROW_ROWS = 3  # below NARROW_COLUMNS
NARROW_COLUMNS = 100


class NoticeLog(RichLog):
    def __init__(self, *, id: str, max_lines: int) -> None:
        super().__init__(id=id, max_lines=max_lines, wrap=True)
        self.entry_rows: list[int] = []  # rows each notice took, oldest first

    def write(self, content: Any, *args: Any, **kwargs: Any) -> NoticeLog:
        if not self._size_known:  # kept back and written again once the width is known
            super().write(content, *args, **kwargs)
            return self
        before = self._start_line + len(self.lines)
        super().write(content, *args, **kwargs)
        self.entry_rows.append(self._start_line + len(self.lines) - before)
        self._fit()
        return self

    def _fit(self) -> None:
        room = NARROW_ROWS if self.app.size.width < NARROW_COLUMNS else ROWS
        rows = 0
        for taken in reversed(self.entry_rows):
            if rows + taken > room:
                break
            rows += taken
        self.styles.height = (rows or room) + 1  # the newest alone taller: its end shows

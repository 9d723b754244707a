"""A screen's one-line title: the longest of its wordings that fits the width, so a narrow
terminal shows a shorter title rather than one cut mid-word (only the shortest may be cut)."""

from __future__ import annotations

from energy_console.tui import format as fmt
from rich.text import Text
from textual.widgets import Static


class Title(Static):
    def __init__(self, *wordings: str, id: str = "title") -> None:
        super().__init__(id=id)
        self.wordings: tuple[str, ...] = wordings  # longest first

    def show(self, *wordings: str) -> None:
        self.wordings = wordings
        self.refresh()

    def render(self) -> Text:
        width = self.content_size.width
        shown = [fmt.shown(w) for w in self.wordings]
        return next((t for t in shown if t.cell_len <= width), shown[-1] if shown else Text())

    @property
    def text(self) -> str:
        """What it shows now (tests read it)."""
        return self.render().plain

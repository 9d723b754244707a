"""A SelectionList whose ticks read without colour (X when chosen, blank when not) and whose
highlighted row stays in view."""

from __future__ import annotations

from rich.segment import Segment
from textual.strip import Strip
from textual.widgets import SelectionList
from textual.widgets.option_list import OptionDoesNotExist


class TickList(SelectionList[str]):
    def on_resize(self) -> None:
        """The highlighted row stays in view when the list gets shorter (the parameter panel
        below it opens, the terminal shrinks)."""
        self.scroll_to_highlight()

    def render_line(self, y: int) -> Strip:
        strip = super().render_line(y)
        try:
            selection = self.get_option_at_index(self.scroll_offset.y + y)
        except OptionDoesNotExist:
            return strip
        segments = list(strip)
        if len(segments) < 2:
            return strip
        tick = segments[1]
        mark = "X" if selection.value in self.selected else " "
        segments[1] = Segment(mark, tick.style, tick.control)
        return Strip(segments, strip.cell_length)

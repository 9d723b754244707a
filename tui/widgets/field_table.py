"""Settings as rows of a table, edited one at a time: one widget instead of a label and an input
per field, which is what keeps the setup screen quick to open."""

from __future__ import annotations

from collections.abc import Iterable

from energy_console.tui.format import shown
from rich.text import Text
from textual.widgets import DataTable


class FieldTable(DataTable):
    """Rows of `label  value`; Enter or a click on a row posts DataTable.RowSelected."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", show_header=False)
        # Text labels, as the header is hidden: a str is read as markup, which imports rich's
        # emoji table at start-up
        self.add_column(Text("field"), key="field")
        self.add_column(Text("value"), key="value")
        self.defaults: dict[str, str] = {}

    def show_rows(self, rows: Iterable[tuple[str, str, str, str]]) -> None:
        """(key, label, text, default) per row; a blank text shows the default, dimmed."""
        self.clear()
        self.defaults = {}
        for key, label, text, default in rows:
            self.defaults[key] = default
            self.add_row(shown(label), self._shown(key, text), key=key)

    def set_text(self, key: str, text: str) -> None:
        self.update_cell(key, "value", self._shown(key, text))

    def _shown(self, key: str, text: str) -> Text:
        if text.strip():
            return shown(text)
        return shown(f"default {self.defaults[key]}".rstrip(), style="dim")

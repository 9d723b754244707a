"""The highlighted technique's parameters, edited as rows of a table; for a chain, its steps."""

from __future__ import annotations

from typing import Any

from energy_console.core.compression import Param
from energy_console.tui.setup_choices import param_rows, params_title
from energy_console.tui.widgets.field_table import FieldTable
from textual.containers import Vertical
from textual.widgets import Static


class ParamPanel(Vertical):
    """Empty until a technique with parameters (or a chain) is highlighted: its title and table
    are built then, which keeps the screen quick to open."""

    def __init__(self, *, id: str) -> None:
        super().__init__(id=id)
        self.technique: str | None = None  # the technique (list key) whose parameters it shows

    def show(self, key: str, entry: Any | None, params: tuple[Param, ...],
             values: dict[str, Any]) -> None:
        """The parameters of catalogue technique `key` (`params`, `values` set), or with an
        `entry` the catalogue rows do not hold, its steps."""
        self.technique = key
        self.display = bool(params) or entry is not None
        if not self.display:
            return
        if not self.children:
            # a Static wraps where a chain's steps are longer than the column
            self.mount(Static("", id="params-title", classes="section", markup=False),
                       FieldTable(id="param-table"))
        table = self.query_one(FieldTable)
        table.display = bool(params)
        self.query_one("#params-title", Static).update(params_title(key, entry))
        if entry is None:
            table.show_rows(param_rows(params, values))

    def set_text(self, name: str, text: str) -> None:
        self.query_one(FieldTable).set_text(name, text)

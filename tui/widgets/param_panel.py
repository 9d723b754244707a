"""The highlighted technique's parameters, edited as rows of a table; for a chain, its steps."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from energy_console.core.compression import Param
from energy_console.tui import format as fmt
from energy_console.tui.setup_choices import param_problem, param_rows, params_title, typed_value
from energy_console.tui.widgets.field_table import FieldTable
from textual import on
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import DataTable, Static


class ParamPanel(Vertical):
    """Empty until a technique with parameters (or a chain) is highlighted: its title and table
    are built then, which keeps the screen quick to open. Enter on a row asks for a value."""

    @dataclass
    class Changed(Message):
        """A parameter was set to `value` (checked and typed), or reset where it is None."""

        technique: str
        param: str
        value: Any

    def __init__(self, *, id: str) -> None:
        super().__init__(id=id)
        self.technique: str | None = None  # the technique (list key) whose parameters it shows
        self.params: tuple[Param, ...] = ()
        self.values: dict[str, Any] = {}  # those of `params` set

    def show(self, key: str, entry: Any | None, params: tuple[Param, ...],
             values: dict[str, Any]) -> None:
        """The parameters of catalogue technique `key` (`params`, `values` set), or with an
        `entry` the catalogue rows do not hold, its steps."""
        self.technique, self.params, self.values = key, params, dict(values)
        self.display = bool(params) or entry is not None
        if not self.display:
            return
        if not self.children:
            # a Static wraps where a chain's steps are longer than the column
            self.mount(Static("", id="params-title", classes="section", markup=False),
                       FieldTable(id="param-table"))
        table = self.query_one(FieldTable)
        table.display = bool(params)
        self.query_one("#params-title", Static).update(fmt.shown(params_title(key, entry)))
        if entry is None:
            table.show_rows(param_rows(params, values))

    @on(DataTable.RowSelected, "#param-table")
    def _edit(self, event: DataTable.RowSelected) -> None:
        from energy_console.tui.screens.dialogs import AskScreen  # the dialogs: not at start-up

        event.stop()
        technique = self.technique or ""
        param = next(p for p in self.params if p.name == event.row_key.value)
        hint = f"default {param.default}"
        if param.choices:
            hint += f"; one of {', '.join(map(str, param.choices))}"

        def edited(text: str | None) -> None:
            if text is not None and self.technique == technique:
                self.set(param, text)

        self.app.push_screen(AskScreen(
            f"{technique} · {param.name}: {param.help}", str(self.values.get(param.name, "")),
            f"{hint}; blank for the default. Enter saves, escape cancels",
            check=lambda text: param_problem(param, text)), edited)

    def set(self, param: Param, text: str) -> None:
        """Set (or with a blank text, reset to its default) one parameter shown; ValueError says
        what is wrong with `text`."""
        problem = param_problem(param, text)
        if problem:
            raise ValueError(problem)
        value = param.validate(typed_value(param.type, text)) if text else None
        if value is None:
            self.values.pop(param.name, None)
        else:
            self.values[param.name] = value
        self.query_one(FieldTable).set_text(param.name, text)
        self.post_message(self.Changed(self.technique or "", param.name, value))

"""Every run of a session in one table, sortable by any column."""

from __future__ import annotations

from pathlib import Path

from energy_console.core.records import RUN_COLUMNS, csv_cell
from energy_console.core.results import read_runs
from energy_console.tui.runs import energy_changes_pct, sort_key
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static

CHANGE_COLUMN = "energy_change_pct"


class ResultsScreen(Screen):
    BINDINGS = [
        Binding("escape,b", "app.pop_screen", "Back", id="back"),
        Binding("o", "app.open_session", "Open session", id="open_session"),
        Binding("R", "reload", "Reload", id="reload"),
    ]
    HELP = "select a column header to sort by it (again: reverse)"

    def __init__(self, session_dir: Path):
        super().__init__()
        self.session_dir = Path(session_dir)
        self.sorted_by: tuple[str, bool] | None = None

    def compose(self) -> ComposeResult:
        yield Static(f"results · {self.session_dir.name}", id="title")
        yield DataTable(id="results", cursor_type="row", zebra_stripes=True)
        yield Static("", id="results-note")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        for column in RUN_COLUMNS[:4] + (CHANGE_COLUMN,) + RUN_COLUMNS[4:]:
            table.add_column(column, key=column)
        self.action_reload()

    def action_reload(self) -> None:
        records = read_runs(self.session_dir)
        changes = energy_changes_pct(records)
        table = self.query_one(DataTable)
        table.clear()
        columns = [c.key.value for c in table.ordered_columns if c.key.value]  # all keyed
        for record in records:
            change = changes.get(record.run_id)
            cells = {CHANGE_COLUMN: "" if change is None else f"{change:+.1f}"}
            table.add_row(*(cells[c] if c in cells else csv_cell(getattr(record, c))
                            for c in columns), key=record.run_id)
        note = f"{len(records)} runs · select a column header to sort by it"
        self.query_one("#results-note", Static).update(
            note if records else "no runs in this session")
        if self.sorted_by:
            table.sort(self.sorted_by[0], key=sort_key, reverse=self.sorted_by[1])

    def on_data_table_header_selected(self, event: DataTable.HeaderSelected) -> None:
        column = event.column_key.value or ""
        reverse = self.sorted_by == (column, False)
        self.sort_by(column, reverse)

    def sort_by(self, column: str, reverse: bool = False) -> None:
        self.sorted_by = (column, reverse)
        self.query_one(DataTable).sort(column, key=sort_key, reverse=reverse)

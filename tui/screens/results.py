"""Every run of a session in one table, sortable by any column."""

from __future__ import annotations

from pathlib import Path

from energy_console.core.store.records import RUN_COLUMNS, csv_cell
from energy_console.core.store.session_dir import read_runs
from energy_console.tui import format as fmt
from energy_console.tui.runs import change_cell, energy_changes, sort_key
from energy_console.tui.widgets.key_footer import KeyFooter
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Input, Static

CHANGE_COLUMN = "energy_change_pct"
# Model and technique first and pinned while the rest scroll; then what a reader looks for.
INPUT_COLUMN = "input"  # size, new tokens and workload: what tells one model's rows apart
FIRST_COLUMNS = ("model", "technique", INPUT_COLUMN, "status", CHANGE_COLUMN,
                 "energy_j_per_inference",
                 "energy_j_per_inference_ci95", "batch_size", "seq_len", "resolution", "reason")
COLUMNS = FIRST_COLUMNS + tuple(c for c in RUN_COLUMNS if c not in FIRST_COLUMNS)
SORT_MARKS = {False: " ▲", True: " ▼"}  # ascending, descending


class ResultsScreen(Screen):
    DEFAULT_CSS = """
    ResultsScreen #results-filter { height: 3; }
    ResultsScreen #results-filter.hidden { display: none; }
    """
    BINDINGS = [
        Binding("escape,b", "back", "Back", id="back"),
        Binding("s", "sort_column", "Sort by column", id="sort"),
        Binding("slash", "filter", "Filter", id="filter"),
        Binding("t", "trade_offs", "Trade-offs", id="trade_offs"),
        Binding("p", "plots", "Plots", id="plots"),
        Binding("o", "app.open_session", "Open session", id="open_session"),
        Binding("R", "reload", "Reload", id="reload"),
    ]
    HELP = ("s sorts by the column under the cursor (again: reverse); / filters by model or "
            "technique; ΔE is against the run's runtime baseline (onnx-* against onnx-fp32), "
            "dim and marked ~ within noise")

    def __init__(self, session_dir: Path):
        super().__init__()
        self.session_dir = Path(session_dir)
        self.sorted_by: tuple[str, bool] | None = None
        self.counts = (0, 0)  # runs shown (filtered), runs in the session
        self.filter_text = ""

    def compose(self) -> ComposeResult:
        yield Static(fmt.shown(f"results · {self.session_dir.name}"), id="title")
        yield DataTable(id="results", cursor_type="cell", zebra_stripes=True)
        yield Input(placeholder="filter: part of a model or technique name (esc clears)",
                    id="results-filter", classes="hidden")
        yield Static("", id="results-note")
        yield KeyFooter()

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.fixed_columns = 2
        for column in COLUMNS:
            table.add_column(column, key=column)
        self.action_reload()

    def action_reload(self) -> None:
        records = read_runs(self.session_dir)
        changes = energy_changes(records)
        table = self.query_one(DataTable)
        table.clear()
        columns = [c.key.value for c in table.ordered_columns if c.key.value]  # all keyed
        wanted = self.filter_text.lower()
        shown = [r for r in records
                 if wanted in r.model.lower() or wanted in r.technique.lower()]
        for record in shown:
            change = changes.get(record.run_id)
            cells = {CHANGE_COLUMN: change_cell(change), "model": fmt.shown(record.model_label),
                     INPUT_COLUMN: fmt.shown(f"{record.input_size} {record.workload}")}
            table.add_row(*(cells[c] if c in cells else fmt.shown(csv_cell(getattr(record, c)))
                            for c in columns), key=record.run_id)
        self.counts = (len(shown), len(records))
        if self.sorted_by:
            table.sort(self.sorted_by[0], key=sort_key, reverse=self.sorted_by[1])
        self._show_note()

    def _show_note(self) -> None:
        shown, total = self.counts
        note = f"{total} runs · s sorts by the cursor's column · / filters"
        if self.sorted_by:
            column, reverse = self.sorted_by
            note = (f"{total} runs sorted by {column} "
                    f"{'descending' if reverse else 'ascending'} · s sorts · / filters")
        if self.filter_text:
            note = f"{shown} of {total} runs match {self.filter_text!r} · {note}"
        self.query_one("#results-note", Static).update(
            fmt.shown(note if total else "no runs in this session"))

    def on_data_table_header_selected(self, event: DataTable.HeaderSelected) -> None:
        column = event.column_key.value or ""
        reverse = self.sorted_by == (column, False)
        self.sort_by(column, reverse)

    def action_sort_column(self) -> None:
        table = self.query_one(DataTable)
        column = table.ordered_columns[table.cursor_column].key.value or ""
        self.sort_by(column, reverse=self.sorted_by == (column, False))

    def action_filter(self) -> None:
        box = self.query_one("#results-filter", Input)
        box.remove_class("hidden")
        box.focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        self.filter_text = event.value.strip()
        self.action_reload()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.query_one(DataTable).focus()

    def action_back(self) -> None:
        """Clear an active filter first; then leave."""
        box = self.query_one("#results-filter", Input)
        if box.has_focus or self.filter_text:
            box.value = ""
            box.add_class("hidden")
            self.query_one(DataTable).focus()
        else:
            self.app.pop_screen()

    def action_plots(self) -> None:
        """Plots of the run under the cursor in its model's study."""
        from energy_console.tui.screens.plots import PlotsScreen

        table = self.query_one(DataTable)
        if not table.row_count:
            self.notify("no runs to plot", severity="warning")
            return
        row_key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key
        self.app.push_screen(PlotsScreen(self.session_dir, str(row_key.value)))

    def action_trade_offs(self) -> None:
        from energy_console.tui.screens.tradeoff import TradeOffScreen

        self.app.push_screen(TradeOffScreen(self.session_dir))

    def sort_by(self, column: str, reverse: bool = False) -> None:
        """Sort by `column`; its header is marked ▲ (ascending) or ▼ (descending)."""
        self.sorted_by = (column, reverse)
        table = self.query_one(DataTable)
        for key, shown in table.columns.items():
            mark = SORT_MARKS[reverse] if key.value == column else ""
            shown.label = fmt.shown(f"{key.value}{mark}")
        table.sort(column, key=sort_key, reverse=reverse)
        table.refresh()
        self._show_note()

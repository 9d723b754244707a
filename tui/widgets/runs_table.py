"""The live runs table: one row per ended run, with the energy change against its baseline."""

from __future__ import annotations

from energy_console.tui.runs import LIVE_COLUMNS, energy_changes_pct, live_cells
from textual.widgets import DataTable


class RunsTable(DataTable):
    def on_mount(self) -> None:
        self.cursor_type = "row"
        self.zebra_stripes = True
        for column in LIVE_COLUMNS:
            self.add_column(column.label, key=column.key)
        self._shown: tuple[dict[str, str], ...] = ()

    def show(self, rows: tuple[dict[str, str], ...]) -> None:
        if rows == self._shown:
            return
        self._shown = rows
        changes = energy_changes_pct(list(rows))
        known = {key.value for key in self.rows}
        for row in rows:
            cells = live_cells(row, changes.get(row["run_id"]))
            if row["run_id"] in known:
                for column, cell in zip(LIVE_COLUMNS, cells, strict=True):
                    self.update_cell(row["run_id"], column.key, cell, update_width=True)
            else:
                self.add_row(*cells, key=row["run_id"])
        # New rows widen columns only when the table next measures itself; repaint after that,
        # or a real terminal keeps the first rows drawn at the old widths (seen in tmux).
        self.call_after_refresh(self.refresh)

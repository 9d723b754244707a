"""The live runs table: one row per ended run, with the energy change against its baseline."""

from __future__ import annotations

from energy_console.core.store.records import RunRecord
from energy_console.tui.runs import LIVE_COLUMNS, energy_changes, live_cells
from textual.widgets import DataTable


class RunsTable(DataTable):
    def on_mount(self) -> None:
        self.cursor_type = "row"
        self.fixed_columns = 2  # model and technique stay while the rest scroll sideways
        self.zebra_stripes = True
        for column in LIVE_COLUMNS:
            self.add_column(column.label, key=column.key)
        self._shown: tuple[RunRecord, ...] = ()

    def show(self, records: tuple[RunRecord, ...]) -> None:
        if records == self._shown:
            return
        self._shown = records
        changes = energy_changes(list(records))
        known = {key.value for key in self.rows}
        for record in records:
            cells = live_cells(record, changes.get(record.run_id))
            if record.run_id in known:
                for column in LIVE_COLUMNS:
                    self.update_cell(record.run_id, column.key, cells[column.key],
                                     update_width=True)
            else:
                self.add_row(*(cells[column.key] for column in LIVE_COLUMNS), key=record.run_id)
        # New rows widen columns only when the table next measures itself; repaint after that,
        # or a real terminal keeps the first rows drawn at the old widths (seen in tmux).
        self.call_after_refresh(self.refresh)

"""Per model and input size: each technique's change against the baseline, with intervals.

The study's question on one screen: how much energy, latency, size and quality each variant
trades, `~` (dim) where a change is within noise; the key findings under each table.
"""

from __future__ import annotations

from pathlib import Path

from energy_console.core.analysis.compare import changes_vs_baseline
from energy_console.core.analysis.findings import TRADE_OFF_QUALITY_LOSS, findings
from energy_console.core.analysis.findings_text import group_lines, missing_reference_notes
from energy_console.core.analysis.generation import (
    GENERATION_COLUMNS,
    GENERATION_NOTE,
    generation_cells,
    generation_records,
)
from energy_console.core.analysis.numbers import NOISE_MARK
from energy_console.core.analysis.report import TRADE_OFF_COLUMNS, trade_off_rows, training_notes
from energy_console.core.store.follow import read_session
from energy_console.tui import format as fmt
from energy_console.tui.widgets.key_footer import KeyFooter
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import DataTable, Static


def styled(cell: str) -> Text:
    """Changes coloured as in the live table: dim within noise, green saving, red cost."""
    if cell.startswith(NOISE_MARK):
        return fmt.shown(cell, style="dim")
    if cell[:1] in "+-" and cell[1:2].isdigit():
        return fmt.shown(cell, style="red" if cell.startswith("+") else "green")
    return fmt.shown(cell)


class TradeOffScreen(Screen):
    DEFAULT_CSS = """
    TradeOffScreen #groups { height: 1fr; }
    TradeOffScreen .trade-off { height: auto; max-height: 12; }
    TradeOffScreen .group-title { text-style: bold; padding: 0 1; margin-top: 1; }
    TradeOffScreen .findings { color: $text-muted; padding: 0 1; }
    """
    BINDINGS = [
        Binding("escape,b", "app.pop_screen", "Back", id="back"),
        Binding("R", "reload", "Reload", id="reload"),
    ]
    HELP = (f"ΔE, Δlatency and Δquality against the baseline of each run's runtime (onnx-* "
            f"against onnx-fp32) with 95 % intervals; {NOISE_MARK} (dim) within noise; a "
            f"finding names a winner only beyond noise; best trade-off = least energy within "
            f"{TRADE_OFF_QUALITY_LOSS:.0%} of the baseline's quality")

    def __init__(self, session_dir: Path):
        super().__init__()
        self.session_dir = Path(session_dir)

    def compose(self) -> ComposeResult:
        yield Static(fmt.shown(f"trade-offs · {self.session_dir.name}"), id="title")
        yield VerticalScroll(id="groups")
        yield KeyFooter()

    async def on_mount(self) -> None:
        await self.action_reload()
        tables = self.query(DataTable)
        if tables:  # the arrow keys move the table in view from the start, no Tab first
            tables.first().focus()

    async def action_reload(self) -> None:
        records = list(read_session(self.session_dir).runs)
        changes = changes_vs_baseline(records)
        box = self.query_one("#groups", VerticalScroll)
        await box.remove_children()
        groups = findings(records)
        if not groups:
            await box.mount(Static("no finished runs in this session yet"))
        missing = missing_reference_notes(records)
        if missing:
            await box.mount(Static(fmt.shown("\n".join(missing), one_line=False),
                                   classes="findings"))
        for group in groups:
            table: DataTable = DataTable(cursor_type="row", zebra_stripes=True, classes="trade-off")
            table.fixed_columns = 1
            await box.mount(Static(fmt.shown(f"{group.model_label} · {group.input_size}"),
                                   classes="group-title"), table)
            for column in TRADE_OFF_COLUMNS:
                table.add_column(column, key=column)
            for row in trade_off_rows(group, changes):
                table.add_row(*(styled(row[c]) for c in TRADE_OFF_COLUMNS))
            # the same sentences as the report: a winner only beyond noise
            await box.mount(Static(fmt.shown("\n".join(group_lines(group, changes)),
                                             one_line=False), classes="findings"))
            generated = generation_records(list(group.runs))
            if generated:  # TTFT, TPOT, energy per output token, prefill and decode
                await self._mount_generation(box, generated)
            trained = training_notes(list(group.runs))  # break-even of variants that trained
            if trained:
                await box.mount(Static(fmt.shown("\n".join(trained), one_line=False),
                                       classes="findings"))

    async def _mount_generation(self, box: VerticalScroll, runs: list) -> None:
        """A group's generate runs: the generation figures with their intervals."""
        columns = [c for c in GENERATION_COLUMNS if c not in ("model", "input")]
        table: DataTable = DataTable(cursor_type="row", zebra_stripes=True,
                                     classes="trade-off generation")
        table.fixed_columns = 1
        await box.mount(table, Static(fmt.shown(GENERATION_NOTE, one_line=False),
                                      classes="findings"))
        for column in columns:
            table.add_column(column, key=column)
        for run in runs:
            cells = generation_cells(run)
            table.add_row(*(fmt.shown(cells[c]) for c in columns))

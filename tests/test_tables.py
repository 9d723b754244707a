"""The report's tables (core/analysis/tables.py) are what rich makes of them: the columns that fit
are those rich measures as fitting, and a table drawn without rich is the text rich draws."""

from __future__ import annotations

import io
import random

from energy_console.core.analysis.tables import drawn_table, fitted_table
from energy_console.core.spec.text import printable
from rich.console import Console
from rich.table import Table
from rich.text import Text

# wide, zero-width, combining and soft-hyphen characters, markup, tabs, a line separator
PIECES = ["a", "bb", "漢字", "é", "e\u0301", "\u200b", "\u00ad", "[bold]", "x y", "ΔE", "🙂",
          "\ufe0f", "\t", " ", "±", "—", "\u2028"]


def _random_table(rnd: random.Random) -> tuple[str, tuple[str, ...], list[dict[str, str]]]:
    def text(most: int) -> str:
        return "".join(rnd.choice(PIECES) for _ in range(rnd.randint(0, most)))

    headers = tuple(f"h{i}" + rnd.choice(["", "漢", "Δ"]) for i in range(rnd.randint(1, 8)))
    rows = [{h: text(6) for h in headers if rnd.random() < 0.9}
            for _ in range(rnd.randint(0, 5))]
    return text(12), headers, rows


def _rich_text(table: Table, width: int) -> str:
    out = io.StringIO()
    Console(width=width, file=out, color_system=None, force_terminal=False).print(table)
    return out.getvalue()


def _rich_fit(title: str, headers: tuple[str, ...], rows: list[dict[str, str]],
              essential: int, width: int) -> int:
    """How many columns fit as rich measures them (what fitted_table did before)."""
    measure = Console(width=100_000, file=io.StringIO())
    for count in range(len(headers), essential - 1, -1):
        table = Table(title=Text(printable(title)), expand=False)
        for header in headers[:count]:
            table.add_column(header, no_wrap=True)
        for row in rows:
            table.add_row(*(Text(printable(row.get(h, ""))) for h in headers[:count]))
        if measure.measure(table).maximum <= width:
            return count
    return essential


def test_the_columns_kept_are_those_rich_measures_as_fitting():
    rnd = random.Random(1)
    for _ in range(300):
        title, headers, rows = _random_table(rnd)
        essential, width = rnd.randint(1, len(headers)), rnd.randint(5, 140)
        table = fitted_table(title, headers, rows, essential, width)
        assert len(table.columns) == _rich_fit(title, headers, rows, essential, width)


def test_a_table_drawn_without_rich_is_the_text_rich_draws():
    rnd = random.Random(2)
    drawn = 0
    for _ in range(600):
        title, headers, rows = _random_table(rnd)
        width = rnd.randint(5, 140)
        table = fitted_table(title, headers, rows, rnd.randint(1, len(headers)), width)
        text = drawn_table(table, width)
        if text is not None:
            drawn += 1
            assert text == _rich_text(table, width), (title, headers, rows, width)
    assert drawn > 50  # most fitting tables take the fast path


def test_where_even_the_essential_columns_overflow_the_run_is_named_whole_and_no_figure_is_cut():
    """What `compare` showed a user when two noisy sessions' intervals were wide: the technique
    cut to "dynamic-in…" and a change's interval to "(-100…+4574…"."""
    headers = ("model", "technique", "input", "energy A", "energy B", "ΔE")
    rows = [{"model": "tiny-bert-random", "technique": "dynamic-int8", "input": "b1-s16",
             "energy A": "206 [0–1,620] mJ", "energy B": "56.2 [0–211] mJ",
             "ΔE": "~-73% (-100…+4574%)"}]
    width = 80
    text = _rich_text(fitted_table("A  vs  B", headers, rows, len(headers), width), width)

    assert "│ tiny-bert-random │ dynamic-int8 │ b1-s16 │" in text
    lines = [line.split("│")[1:-1] for line in text.splitlines() if line.startswith("│")]
    for column, figure in enumerate(("206 [0–1,620] mJ", "56.2 [0–211] mJ", "~-73% (-100…+4574%)"),
                                    start=3):
        assert "".join(cells[column].strip() for cells in lines) == figure.replace(" ", "")
    assert max(len(line) for line in text.splitlines()) <= width

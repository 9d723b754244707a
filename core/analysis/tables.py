"""The tables of `report` and `compare`: as many columns as fit a terminal, drawn fast.

A rich Table measured by rich once per candidate column count, then drawn by rich, took most of
a big session's report (0.7 s and 0.3 s for fifty rows): the fit is computed here from the cells'
widths, and a table that fits is drawn here too, as rich would draw it (tests/test_tables.py
compares the two).
"""

from __future__ import annotations

from energy_console.core.spec.text import printable

# The first columns of every table name the run (model, technique, input): where even the
# essential columns overflow the terminal they keep their whole width, and the figures wrap
# onto a second line rather than end in "…" (a figure cut is a figure lost).
NAMING_COLUMNS = 3


def fitted_table(title: str, headers: tuple[str, ...], rows: list[dict[str, str]],
                 essential: int, width: int):
    """A rich Table of `rows` (cells by header) with as many of `headers` as fit in `width`,
    dropping them from the end but never the first `essential` ones (see NAMING_COLUMNS for
    what gives where those overflow)."""
    from rich.table import Table
    from rich.text import Text

    cells = [[printable(row.get(h, "")) for h in headers] for row in rows]
    count = len(headers)
    column_widths = [_natural_width([h, *(row[i] for row in cells)])
                     for i, h in enumerate(headers)]
    while count > essential and _table_width(column_widths[:count]) > width:
        count -= 1
    # Text, not markup: a model's or session's name may hold "[bold]" or "[link=…]"
    table = Table(title=Text(printable(title)), expand=False)
    for i, header in enumerate(headers[:count]):
        if i < NAMING_COLUMNS:
            table.add_column(header, no_wrap=True, min_width=column_widths[i])
        else:
            table.add_column(header, overflow="fold")
    for row in cells:
        table.add_row(*(Text(cell) for cell in row[:count]))
    return table


def drawn_table(table, width: int) -> str | None:
    """The text rich draws for a fitted_table that fits in `width`, drawn here (rich takes a
    few tenths of a second for fifty rows): the title centred above, a heavy-head box, one line
    a row. None where rich would wrap or shrink something (rich then draws it)."""
    from rich.cells import cell_len

    columns = [[str(c.header), *(cell.plain for cell in c.cells)] for c in table.columns]
    widths = [max(cell_len(text) for text in column) for column in columns]
    total = _table_width(widths)
    title = table.title.plain
    if (total > width or cell_len(title) > total or title != title.strip() or not table.rows
            or any(len(text.splitlines()) > 1 for column in columns for text in column)):
        return None

    def rule(left: str, line: str, cross: str, right: str) -> str:
        return left + cross.join(line * (w + 2) for w in widths) + right + "\n"

    def row(edge: str, texts: list[str]) -> str:
        return edge + edge.join(f" {t}{' ' * (w - cell_len(t))} "
                                for t, w in zip(texts, widths, strict=True)) + edge + "\n"

    excess = total - cell_len(title)
    lines = [" " * (excess // 2) + title + " " * (excess - excess // 2) + "\n"] if title else []
    lines += [rule("┏", "━", "┳", "┓"), row("┃", [c[0] for c in columns]),
              rule("┡", "━", "╇", "┩")]
    lines += [row("│", [c[i] for c in columns]) for i in range(1, len(columns[0]))]
    lines.append(rule("└", "─", "┴", "┘"))
    return "".join(lines)


def _natural_width(texts: list[str]) -> int:
    """The widest of texts in terminal cells, as rich measures a Text."""
    from rich.cells import cell_len

    return max((cell_len(line) for text in texts for line in text.splitlines()), default=0)


def _table_width(column_widths: list[int]) -> int:
    """A rich Table's natural width (default box, edges and padding) for its columns' widths:
    one space each side of every column, a border between columns and at both edges."""
    return sum(w + 2 for w in column_widths) + len(column_widths) + 1

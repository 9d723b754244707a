"""Numbers as the console shows them: short, with units, and a dash where a figure is missing;
text from outside (names, reasons, folder names) as text, never as markup or terminal controls."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import TYPE_CHECKING

from energy_console.core.spec.text import printable
from rich.text import Text
from textual.content import Content

if TYPE_CHECKING:
    from energy_console.core.store.records import RunRecord

DASH = "—"


def shown(text: object, *, one_line: bool = True, style: str = "") -> Text:
    """`text` as a widget shows it: control characters, escape introducers and bidi controls as
    visible escapes (core.spec.text.printable), and every `[` as itself, never markup. For
    DataTable cells, RichLog lines, Static and Label updates, and plot labels."""
    return Text(printable(text, one_line=one_line), style=style, end="")


def shown_content(text: object, *, one_line: bool = True) -> Content:
    """`shown` as Textual Content, for the widgets that take Content (option and button
    prompts)."""
    return Content(printable(text, one_line=one_line))


def attach_command(session_dir: Path | None = None) -> str:
    """The command that reopens a session's live view (the newest session without one): its
    folder relative to the working folder where it lies inside it, quoted for a shell."""
    if session_dir is None:
        return "energy-console attach"
    path = Path(session_dir).resolve()
    try:
        path = path.relative_to(Path.cwd())
    except ValueError:
        pass
    return f"energy-console attach {shlex.quote(str(path))}"


def watts(value: float | None) -> str:
    return DASH if value is None else f"{value:.1f} W"


def number(value: float | None) -> str:
    return DASH if value is None else f"{value:.1f}"


def duration(seconds: float | None) -> str:
    if seconds is None:
        return DASH
    seconds = max(0, int(round(seconds)))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def eta(seconds: float | None, rough_pct: float | None) -> str:
    """`1m30s ±40%` from the spread of the runs timed so far; `~1m30s` while a workload still to
    run has no timed run (generation takes longer than inference)."""
    if seconds is None:
        return DASH
    if rough_pct is None:
        return f"~{duration(seconds)}"
    return f"{duration(seconds)} ±{rough_pct:.0f}%"


METRIC_SHORT = {"accuracy": "acc", "perplexity": "ppl", "prompt_perplexity": "prompt-ppl",
                "top1_agreement": "top1",
                "next_token_agreement": "next-tok", "cosine_similarity": "cos", "map": "mAP",
                "fidelity_map": "fid-mAP"}


def quality(record: RunRecord) -> str:
    """The task metric, short enough for a table cell, with the fidelity beside it (top-1
    agreement; fidelity-mAP for detectors)."""
    value = record.quality_value
    top1 = record.fidelity_top1
    fidelity = "" if top1 is None else f"top1 {top1:.2f}"
    if record.fidelity_map is not None:
        fidelity = f"fid {record.fidelity_map:.2f}"
    if value is None:
        return fidelity or DASH
    metric = record.quality_metric or ""
    if metric in ("top1_agreement", "next_token_agreement", "fidelity_map"):  # the fidelity
        return f"{METRIC_SHORT[metric]} {value:.2f}"
    shown = f"{value:.0f}" if abs(value) >= 100 else f"{value:.3g}"
    return f"{METRIC_SHORT.get(metric, metric)} {shown} {fidelity}".strip()

"""A session's report in the other formats: CSV, markdown and JSON for scripts and notebooks, and
`report --out DIR`: a markdown summary (per-model trade-off tables, key findings, Pareto fronts)
with PNG plots of energy against quality and size, and of power over the session."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from energy_console.core.analysis.compare import COMPARED, Change, changes_vs_baseline
from energy_console.core.analysis.findings import (
    TRADE_OFF_QUALITY_LOSS,
    GroupFindings,
    findings,
    quality_score,
)
from energy_console.core.analysis.generation import generation_markdown, generation_text
from energy_console.core.analysis.report import (
    TRADE_OFF_COLUMNS,
    energy_with_ci,
    format_change,
    format_size,
    report_notes,
    trade_off_rows,
)
from energy_console.core.analysis.traces import power_traces
from energy_console.core.spec.text import printable
from energy_console.core.store.records import RUN_COLUMNS, RunRecord

FORMATS = ("table", "csv", "markdown", "json")
CHANGE_FIELDS = tuple(f"{column}_change" for column in COMPARED)


def _change_columns(change: Change | None) -> list[str]:
    if change is None:
        return ["", "", ""]
    return [f"{change.fraction:.6g}", "" if change.ci95 is None else f"{change.ci95:.6g}",
            str(change.within_noise).lower()]


def as_csv(records: list[RunRecord]) -> str:
    """runs.csv's columns, then each compared figure's change, its 95 % half-width and whether
    it is within noise (fractions)."""
    changes = changes_vs_baseline(records)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow([*RUN_COLUMNS, *(f"{c}{s}" for c in CHANGE_FIELDS
                                     for s in ("", "_ci95", "_within_noise"))])
    for r in records:
        extra = [cell for column in COMPARED for cell in _change_columns(changes[r.run_id][column])]
        # a model's or reason's text came from outside: shown, never acted on, when catted
        writer.writerow([printable(cell, one_line=False) for cell in (*r.csv_cells(), *extra)])
    return buffer.getvalue()


def as_json(records: list[RunRecord]) -> str:
    changes = changes_vs_baseline(records)
    return json.dumps([
        {**r.as_dict(), "changes": {
            column: None if c is None else {"fraction": c.fraction, "ci95": c.ci95,
                                            "within_noise": c.within_noise}
            for column, c in changes[r.run_id].items()}}
        for r in records
    ], indent=2)


def as_markdown(session, plots: dict[str, list[str]] | None = None) -> str:
    """The study's summary: per model and input, a trade-off table (technique rows with ΔE,
    Δlatency, size ratio and Δquality, each with its interval), the key findings and the
    Pareto front; then every note the text report gives."""
    records = list(session.runs)
    changes = changes_vs_baseline(records)
    lines = [f"# energy-console report: {session.name}", "",
             f"{len(records)} runs; changes against each model's baseline at the same input with "
             "95 % intervals; `~` marks a change within noise.", ""]
    for group in findings(records):
        name = f"{group.model_label} · {group.input_size}"
        lines += [f"## {name}", "", "| " + " | ".join(TRADE_OFF_COLUMNS) + " |",
                  "|" + "---|" * len(TRADE_OFF_COLUMNS)]
        lines += ["| " + " | ".join(row[c] for c in TRADE_OFF_COLUMNS) + " |"
                  for row in trade_off_rows(group, changes)]
        lines += ["", *_key_findings(group, changes), ""]
        lines += [f"![{name}]({path})" for path in (plots or {}).get(_slug(group), [])]
        lines.append("")
    lines += generation_markdown(records)
    power = (plots or {}).get("", [])
    if power:
        lines += ["## Power over the session", "", *(f"![power]({p})" for p in power), ""]
    notes = [n for n in report_notes(records)
             if not n.startswith(("Pareto front", "  best trade-off"))
             and not (n.startswith("  ") and " mJ/inference" in n)]
    lines += ["## Notes"]
    for note in notes:
        lines += [f"- {note.strip()}"] if note.startswith("  ") else ["", note, ""]
    return printable("\n".join(lines), one_line=False) + "\n"


def _key_findings(group: GroupFindings, changes: dict[str, dict[str, Change | None]]
                  ) -> list[str]:
    def name(r: RunRecord | None) -> str:
        if r is None:
            return "—"
        change = changes[r.run_id]["energy_j_per_inference"]
        versus = "" if change is None else f", ΔE {format_change(change)}"
        return f"**{r.technique}** ({energy_with_ci(r)}/inference{versus})"

    best_quality = "—" if group.best_quality is None else group.best_quality.technique

    lines = ["Key findings:", "",
             f"- least energy per inference: {name(group.least_energy)}",
             f"- smallest: {'—' if group.smallest is None else group.smallest.technique}"
             f" ({format_size(group.smallest.size_bytes) if group.smallest else '—'})",
             f"- best quality: {best_quality}",
             f"- best trade-off (least energy within {TRADE_OFF_QUALITY_LOSS:.0%} of the "
             f"baseline's quality): {name(group.best_trade_off)}",
             "- Pareto front (energy vs quality): "
             + (", ".join(r.technique for r in group.pareto) or "—")]
    return lines


def _slug(group: GroupFindings) -> str:
    model = "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in group.model)
    return f"{model.strip('-')}_{group.input_size}"


def write_report(session, out_dir: Path) -> list[Path]:
    """report.md, report.csv and the PNG plots in out_dir; returns the files written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    plots = write_plots(session, out_dir)
    written = [out_dir / name for names in plots.values() for name in names]
    (out_dir / "report.md").write_text(as_markdown(session, plots), encoding="utf-8")
    (out_dir / "report.csv").write_text(as_csv(list(session.runs)), encoding="utf-8")
    return [out_dir / "report.md", out_dir / "report.csv", *written]


def write_plots(session, out_dir: Path) -> dict[str, list[str]]:
    """Per model and input: energy vs quality and energy vs size with 95 % error bars; and the
    power of every sensor over the session. Returns file names by group slug ('' = session)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names: dict[str, list[str]] = {}
    for group in findings(list(session.runs)):
        slug = _slug(group)
        for y_name, y_of, label in (
            ("quality", quality_score, "quality (higher is better)"),
            ("size", lambda r: (r.size_bytes or 0) / 1e6, "size (MB)"),
        ):
            points: list[tuple[RunRecord, float, float]] = []
            for r in group.runs:
                x, y = r.energy_j_per_inference, y_of(r)
                if x is not None and y is not None:
                    points.append((r, x, y))
            if not points:
                continue
            figure, axes = plt.subplots(figsize=(6, 4), dpi=100)
            for r, x, y in points:
                axes.errorbar(x, y, xerr=r.energy_j_per_inference_ci95 or 0.0, fmt="o",
                              capsize=3)
                axes.annotate(r.technique, (x, y), fontsize=8, xytext=(4, 4),
                              textcoords="offset points")
            axes.set_xlabel("energy per inference (J), 95 % interval")
            axes.set_ylabel(label)
            axes.set_title(printable(f"{group.model_label} {group.input_size}"))
            figure.tight_layout()
            name = f"energy_vs_{y_name}_{slug}.png"
            figure.savefig(out_dir / name)
            plt.close(figure)
            names.setdefault(slug, []).append(name)
    power = _power_plot(session, out_dir, plt)
    if power:
        names[""] = [power]
    return names


def _power_plot(session, out_dir: Path, plt) -> str | None:
    """Power of each sensor over the whole session."""
    traces = power_traces(Path(session.path))
    if not traces:
        return None
    start = min(trace.t[0] for trace in traces.values())
    figure, axes = plt.subplots(figsize=(8, 3), dpi=100)
    for trace in traces.values():
        axes.plot([t - start for t in trace.t], trace.watts, label=trace.sensor, linewidth=0.8)
    axes.set_xlabel("seconds since the session started")
    axes.set_ylabel("W")
    axes.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(out_dir / "power.png")
    plt.close(figure)
    return "power.png"


def render(session, fmt: str, width: int) -> str:
    """The report in one of FORMATS."""
    from energy_console.core.analysis.report import format_report

    records = list(session.runs)
    if fmt == "csv":
        return as_csv(records)
    if fmt == "json":
        return as_json(records) + "\n"
    if fmt == "markdown":
        return as_markdown(session)
    return format_report(session, width) + generation_text(list(session.runs), width)

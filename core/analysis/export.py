"""A session's report in the other formats: CSV, markdown and JSON for scripts and notebooks, and
`report --out DIR`: a markdown summary (per-model trade-off tables, key findings, Pareto fronts)
with PNG plots of energy against quality and size, and of power over the session."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from energy_console.core.analysis.compare import (
    COMPARED,
    Change,
    changes_vs_baseline,
    training_comparisons,
)
from energy_console.core.analysis.findings import GroupFindings, findings, repeats_needed
from energy_console.core.analysis.findings_text import group_dict, group_lines
from energy_console.core.analysis.generation import generation_markdown, generation_text
from energy_console.core.analysis.idle_check import idle_notes, idle_problems
from energy_console.core.analysis.plot_data import Scatter, scatter
from energy_console.core.analysis.report import (
    TRADE_OFF_COLUMNS,
    disturbed,
    report_notes,
    trade_off_rows,
)
from energy_console.core.analysis.traces import power_traces
from energy_console.core.spec.text import printable
from energy_console.core.store.records import RUN_COLUMNS, RunRecord

FORMATS = ("table", "csv", "markdown", "json")
CHANGE_FIELDS = tuple(f"{column}_change" for column in COMPARED)


def _number(value: float | None) -> str:
    return "" if value is None else f"{value:.6g}"


def _change_columns(change: Change | None) -> list[str]:
    if change is None:
        return ["", "", "", ""]
    return [_number(change.fraction), _number(change.low), _number(change.high),
            str(change.within_noise).lower()]


def as_csv(records: list[RunRecord]) -> str:
    """runs.csv's columns, then each compared figure's change, its 95 % interval's bounds (a
    ratio's, on the log scale) and whether it is within noise (fractions)."""
    changes = changes_vs_baseline(records)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow([*RUN_COLUMNS, *(f"{c}{s}" for c in CHANGE_FIELDS
                                     for s in ("", "_low", "_high", "_within_noise"))])
    for r in records:
        extra = [cell for column in COMPARED for cell in _change_columns(changes[r.run_id][column])]
        # a model's or reason's text came from outside: shown, never acted on, when catted
        writer.writerow([printable(cell, one_line=False) for cell in (*r.csv_cells(), *extra)])
    return buffer.getvalue()


def _change_dict(change: Change | None) -> dict | None:
    if change is None:
        return None
    return {"fraction": change.fraction, "low": change.low, "high": change.high,
            "within_noise": change.within_noise}


def findings_data(records: list[RunRecord], info: Mapping[str, Any]) -> dict:
    """The findings `report` states as text, as data: per model and input the rankings (a
    winner only when decided), the Pareto front; the break-evens with their intervals, repeats
    needed, disturbed runs, an idle baseline without meaning. Built from the same objects as
    the text."""
    changes = changes_vs_baseline(records)
    break_evens = {}
    for run_id, (even, _gain) in training_comparisons(records).items():
        break_evens[run_id] = None if even is None or even.inferences is None else {
            "inferences": even.inferences, "ci95": even.ci95, "within_noise": even.within_noise}
    return {
        "groups": [group_dict(group, changes) for group in findings(records)],
        "break_even": break_evens,
        "repeats_needed": repeats_needed(records),
        "disturbed": {r.run_id: f"other processes used {r.other_cpu_load_pct:.0f}% of all cores"
                      for r in records if r.finished and disturbed(r)},
        "energy_faults": {r.run_id: r.energy_fault for r in records if r.energy_fault},
        "idle_baseline_not_meaningful": idle_problems(records, info),
        # windows measured again until the budget ran out, still disturbed: the cause
        "stayed_disturbed": {r.run_id: r.disturbed for r in records
                             if r.finished and r.disturbed},
        # runs that spent protocol.max_run_s before reaching protocol.target_ci_pct
        "budget_limited": {r.run_id: {"energy_j_per_inference": r.energy_j_per_inference,
                                      "ci95": r.energy_j_per_inference_ci95,
                                      "windows": r.repeats}
                           for r in records if r.finished and r.precision == "budget"},
    }


def as_json(records: list[RunRecord], info: Mapping[str, Any]) -> str:
    """{"runs": every row with its changes, "findings": findings_data}."""
    changes = changes_vs_baseline(records)
    runs = [{**r.as_dict(), "changes": {column: _change_dict(c)
                                        for column, c in changes[r.run_id].items()}}
            for r in records]
    return json.dumps({"runs": runs, "findings": findings_data(records, info)}, indent=2)


def as_markdown(session, plots: dict[str, list[str]] | None = None) -> str:
    """The study's summary: per model and input, a trade-off table (technique rows with ΔE,
    Δlatency, size ratio and Δquality, each with its interval), the key findings and the
    Pareto front; then every note the text report gives."""
    records = list(session.runs)
    changes = changes_vs_baseline(records)
    lines = [f"# energy-console report: {session.name}", "",
             f"{len(records)} runs; changes against the baseline of each run's runtime "
             "(onnx-* against onnx-fp32) at the same input, with 95 % intervals (a ratio's, on "
             "the log scale); `~` marks a change within noise; a finding names a winner (bold) "
             "only where the difference lies outside noise.", ""]
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
    lines += ["## Notes"]
    for note in idle_notes(records, session.info) + report_notes(records, with_findings=False):
        lines += [f"- {note.strip()}"] if note.startswith("  ") else ["", note, ""]
    return printable("\n".join(lines), one_line=False) + "\n"


def _key_findings(group: GroupFindings, changes: dict[str, dict[str, Change | None]]
                  ) -> list[str]:
    """The key findings; a winner in bold only where its difference lies outside noise."""
    return ["Key findings:", "", *(f"- {line}" for line in group_lines(group, changes, bold=True))]


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
        for kind in ("quality", "size"):
            data = scatter(group, kind)
            if data is None:
                continue
            figure = draw_scatter(data, plt)
            name = f"energy_vs_{kind}_{slug}.png"
            figure.savefig(out_dir / name)
            plt.close(figure)
            names.setdefault(slug, []).append(name)
    power = _power_plot(session, out_dir, plt)
    if power:
        names[""] = [power]
    return names


def draw_scatter(data: Scatter, plt):
    """A matplotlib figure of `data`: error bars from the figures' intervals, axes from zero."""
    figure, axes = plt.subplots(figsize=(6, 4), dpi=100)
    for p in data.points:
        axes.errorbar(p.x, p.y, xerr=[[p.x - p.x_low], [p.x_high - p.x]],
                      yerr=[[p.y - p.y_low], [p.y_high - p.y]], fmt="o", capsize=3)
        axes.annotate(printable(p.run.technique), (p.x, p.y), fontsize=8, xytext=(4, 4),
                      textcoords="offset points")
    axes.set_xlim(left=data.x_min)
    if data.y_min is not None:
        axes.set_ylim(bottom=data.y_min)
    axes.set_xlabel(data.x_label)
    axes.set_ylabel(data.y_label)
    axes.set_title(data.title)
    figure.tight_layout()
    return figure


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
    axes.set_ylim(bottom=0)
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
        return as_json(records, session.info) + "\n"
    if fmt == "markdown":
        return as_markdown(session)
    return format_report(session, width) + generation_text(list(session.runs), width)

"""A session's runs as text: figures with their intervals, changes against each model's baseline
marked when within noise, and the study's answers (Pareto front, repeats needed)."""

from __future__ import annotations

import io
from pathlib import Path

from energy_console.core.analysis.compare import (
    BreakEven,
    Change,
    TrainingGain,
    changes_vs_baseline,
    reference_of,
    references,
    training_comparisons,
)
from energy_console.core.analysis.findings import RESOLVE_DIFFERENCE, repeats_needed
from energy_console.core.analysis.findings_text import findings_notes, missing_reference_notes
from energy_console.core.analysis.idle_check import idle_notes
from energy_console.core.analysis.numbers import (
    NOISE_MARK,
    count,
    energy_with_ci,
    format_change,
    format_co2e,
    format_delta,
    format_energy,
    format_latency,
    format_power,
    format_size,
    short,
)
from energy_console.core.analysis.quality_figure import quality_figure
from energy_console.core.analysis.tables import drawn_table, fitted_table
from energy_console.core.spec.text import printable
from energy_console.core.store.records import NUMERIC_COLUMNS, RunRecord

# Other processes' CPU load above this share of all cores marks a run as disturbed (RAPL and the
# estimate are box-wide: that load is in its energy).
DISTURBED_LOAD_PCT = 10.0


def disturbed(record: RunRecord) -> bool:
    return (record.other_cpu_load_pct or 0.0) > DISTURBED_LOAD_PCT


# Report table columns, most important first: a narrow terminal drops them from the end.
TABLE_COLUMNS = ("model", "technique", "input", "status", "energy/inf", "ΔE", "p50", "Δt",
                 "size", "Δsize", "quality", "power", "CO2e/1k", "source", "other CPU")
ESSENTIAL_COLUMNS = 6  # model, technique, input, status, energy/inf, ΔE always stay
COMPARISON_COLUMNS = ("model", "technique", "input", "energy A", "energy B", "ΔE", "Δt",
                      "power Δ", "p50 A", "p50 B")


def table_cells(record: RunRecord, changes: dict[str, Change | None]) -> dict[str, str]:
    """One run's cells of the report table, by TABLE_COLUMNS header."""
    r = record
    cells = {"model": r.model_label, "technique": r.technique,
             "input": r.input_size, "status": r.status}
    if not r.finished:
        return cells
    quality = f"{r.quality_metric or ''} {short(r.quality_value)}".strip()
    load = r.other_cpu_load_pct
    return cells | {
        "energy/inf": energy_with_ci(r),
        "ΔE": format_change(changes["energy_j_per_inference"]),
        "p50": format_latency(r.latency_ms_p50, ci95=r.latency_ms_p50_ci95),
        "Δt": format_change(changes["latency_ms_p50"]),
        "size": format_size(r.size_bytes), "Δsize": format_change(changes["size_bytes"]),
        "quality": quality,
        "power": format_power(r.avg_power_w, ci95=r.avg_power_w_ci95),
        "CO2e/1k": format_co2e(r.co2e_g_per_1k_inferences),
        "source": r.energy_source or "",
        "other CPU": "" if load is None else f"{load:.0f}%{'!' if disturbed(r) else ''}",
    }


def runs_table(session, width: int):
    """The report's table, with as many columns as fit in `width`."""
    records = list(session.runs)
    changes = changes_vs_baseline(records)
    rows = [table_cells(r, changes[r.run_id]) for r in records]
    return fitted_table(f"{session.name}: {len(records)} runs", TABLE_COLUMNS, rows,
                        ESSENTIAL_COLUMNS, width)


def format_report(session, width: int = 120) -> str:
    """A session as text for a terminal `width` columns wide: one row per run with intervals and
    changes against its baseline, then the notes and the study's answers."""
    out = io.StringIO()
    console = _text_console(width, out)
    if getattr(session, "is_running", False):
        console.print(f"{session.name} is still running: {session.ended_runs} of "
                      f"{session.total_runs} runs ended so far; the figures below are those runs "
                      "(`energy-console attach` follows it live)", markup=False, highlight=False)
    problems = getattr(session, "problems", ())  # what in the session's files did not read
    if problems:
        console.print("Problems reading this session (the rest is shown):",
                      *[f"  {p}" for p in problems], sep="\n", markup=False, highlight=False,
                      soft_wrap=True)
    table = runs_table(session, width)
    drawn = drawn_table(table, width)
    if drawn is None:
        console.print(table)
    else:
        out.write(drawn)
    notes = [printable(line) for line in
             idle_notes(list(session.runs), getattr(session, "info", {}))
             + report_notes(list(session.runs))]
    if notes:  # one print: each line wraps as it would alone, for a tenth of the time
        console.print("\n".join(notes), markup=False, highlight=False)
    return printable(out.getvalue(), one_line=False)


def _text_console(width: int, out: io.StringIO):
    """A rich Console that writes plain text (no colour codes) into `out`. Rich drops some
    control characters silently: outside text is made printable before it is printed (so they
    show), and the whole output again after."""
    from rich.console import Console

    return Console(width=width, file=out, color_system=None, force_terminal=False)


def report_notes(records: list[RunRecord], with_findings: bool = True) -> list[str]:
    """What the table needs said beside it: reasons, noise, estimates, disturbances, faults,
    repeats needed, training costs, and (`with_findings`) the findings of each model at each
    input; without them, still the runs whose runtime's baseline is missing."""
    lines = []
    not_finished = folded_reasons([r for r in records if not r.finished])
    if not_finished:
        lines += ["Skipped and failed runs:", *not_finished]
    lines.append(f"Changes are against the baseline of the run's runtime (onnx-* against "
                 f"onnx-fp32) for the same model at the same input, with 95 % intervals (a "
                 f"ratio's, on the log scale); {NOISE_MARK} marks a change within noise (its "
                 "interval includes zero).")
    if any(r.energy_source in ("estimated", "mixed") for r in records if r.finished):
        lines.append("Energy is estimated (constant watts) where the source says so: there ΔE "
                     "only tracks latency.")
    busy = [f"  {r.run_id}: {r.other_cpu_load_pct:.0f}% of all cores"
            for r in records if r.finished and disturbed(r)]
    if busy:
        lines += [f"Runs disturbed by other CPU load (over {DISTURBED_LOAD_PCT:.0f}% of all "
                  "cores, counted in box-wide energy):", *busy]
    marked = [f"  {r.run_id}: {r.disturbed}" for r in records if r.finished and r.disturbed]
    if marked:
        lines += ["Runs whose windows stayed disturbed (measured again until the budget, "
                  "protocol.max_run_s, ran out):", *marked]
    short = [f"  {r.run_id}: {energy_with_ci(r)}/inference after {r.repeats} windows"
             for r in records if r.finished and r.precision == "budget"]
    if short:
        lines += ["Runs that spent their budget before reaching protocol.target_ci_pct:",
                  *short]
    parts = [f"  {r.run_id}: {r.energy_uncertainty}" for r in records
             if r.finished and r.energy_uncertainty]
    if parts:
        lines += ["Intervals of energy per inference in parts (95 %, % of the figure; the "
                  "interval is the root sum of squares of spread, counter, edges and "
                  "integration):", *parts]
    faulty = [f"  {r.run_id}: {r.energy_fault}" for r in records if r.energy_fault]
    if faulty:
        lines += ["Runs whose energy is not trustworthy (a sensor failed or stood still):",
                  *faulty]
    needed = repeats_needed(records)
    if needed:
        lines += [f"Repeats for a 95 % interval of ±{RESOLVE_DIFFERENCE:.0%} on energy per "
                  "inference, from each baseline's measured spread:",
                  *(f"  {line}" for line in needed)]
    lines += training_notes(records)
    if with_findings:
        return lines + findings_notes(records, changes_vs_baseline(records))
    return lines + missing_reference_notes(records)


def folded_reasons(records: list[RunRecord]) -> list[str]:
    """`  run (skipped): why` per run; runs that share a status and reason, said once:
    `  3 runs skipped: why (a, b, c)`."""
    by_reason: dict[tuple[str, str], list[str]] = {}
    for r in records:
        by_reason.setdefault((r.status, r.reason), []).append(r.run_id)
    return [f"  {ids[0]} ({status}): {reason}" if len(ids) == 1 else
            f"  {len(ids)} runs {status}: {reason} ({', '.join(ids)})"
            for (status, reason), ids in by_reason.items()]


def training_notes(records: list[RunRecord]) -> list[str]:
    """Per run that trained before it was measured: the training's energy, the inferences that
    pay it back against the baseline, and the quality it bought over its post-training variant."""
    compared = training_comparisons(records)
    if not compared:
        return []
    lines = ["Training cost (break-even: inferences after which the training energy is paid back "
             "by the saving per inference against the baseline):"]
    by_id = {r.run_id: r for r in records}
    for run_id, (even, gain) in compared.items():
        r = by_id[run_id]
        lines.append(f"  {r.model_label} · {r.technique} · {r.input_size}: {r.train_steps} "
                     f"steps, {format_energy(r.train_energy_j, ci95=r.train_energy_j_ci95)}; "
                     f"{format_break_even(even)}{format_gain(r, gain)}")
    return lines


def format_break_even(even: BreakEven | None) -> str:
    """`pays back after 1.2k ±0.3k inferences`; `~` when the saving is within noise."""
    if even is None:
        return "no baseline to pay back against"
    if even.inferences is None:
        return "never pays back (no saving per inference against the baseline)"
    mark = NOISE_MARK if even.within_noise else ""
    interval = f" ±{count(even.ci95)}" if even.ci95 is not None else ""
    return f"pays back after {mark}{count(even.inferences)}{interval} inferences"


def format_gain(record: RunRecord, gain: TrainingGain | None) -> str:
    if gain is None:
        return ""
    per_joule = "" if gain.per_joule is None else f", {gain.per_joule:+.3g} per J"
    return (f"; {record.quality_metric} {gain.quality_gain:+.3g} against "
            f"{gain.untrained.technique}{per_joule}")


def format_comparison(a, b, width: int = 120) -> str:
    """Two sessions side by side (two machines, two dates): each run measured in both, with B's
    change against A and its interval; `~` where the difference is within noise."""
    from energy_console.core.analysis.compare import machine_differences, match_sessions

    matched, only_a, only_b = match_sessions(list(a.runs), list(b.runs))
    rows = [{
        "model": m.a.model_label, "technique": m.a.technique,
        "input": m.a.input_size, "energy A": energy_with_ci(m.a), "energy B": energy_with_ci(m.b),
        "ΔE": format_change(m.changes["energy_j_per_inference"]),
        "p50 A": format_latency(m.a.latency_ms_p50, ci95=m.a.latency_ms_p50_ci95),
        "p50 B": format_latency(m.b.latency_ms_p50, ci95=m.b.latency_ms_p50_ci95),
        "Δt": format_change(m.changes["latency_ms_p50"]),
        "power Δ": format_change(m.changes["avg_power_w"]),
    } for m in matched]
    table = fitted_table(f"A {a.name}  vs  B {b.name}", COMPARISON_COLUMNS, rows, 6, width)
    out = io.StringIO()
    console = _text_console(width, out)
    same = _same_session(a, b)
    if same:
        console.print(same, markup=False, highlight=False)
    console.print(table)
    console.print(f"{len(matched)} runs in both; changes are B against A with 95 % intervals, "
                  f"{NOISE_MARK} within noise.", markup=False)
    for label, runs in (("only in A", only_a), ("only in B", only_b)):
        if runs:
            console.print(f"{label}: " + ", ".join(r.run_id for r in runs), markup=False)
    differ = dict.fromkeys(d for m in matched for d in machine_differences(m.a, m.b))
    if differ:
        console.print("the machines differ (figures may differ for that reason): "
                      + "; ".join(differ), markup=False)
    return printable(out.getvalue(), one_line=False)


def _same_session(a, b) -> str:
    """A warning when A and B are one session (or copies of one), so that no change can be."""
    if Path(a.path).resolve() == Path(b.path).resolve():
        return (f"A and B are the same session ({a.name}): every change below is zero by "
                "construction; compare two different sessions")
    a_id, b_id = a.info.get("session_id"), b.info.get("session_id")
    if a_id and a_id == b_id and a.info.get("started_at") == b.info.get("started_at"):
        return (f"A and B are copies of one session ({a_id}): every change below is zero by "
                "construction; compare two different sessions")
    return ""


TRADE_OFF_COLUMNS = ("technique", "energy/inference", "ΔE", "p50", "Δlatency", "size",
                     "size ratio", "quality", "Δquality", "source")


def trade_off_rows(group, changes: dict[str, dict[str, Change | None]]) -> list[dict[str, str]]:
    """One model at one input: a row per technique with each change against its runtime's
    baseline and its interval (a GroupFindings from core.findings, and changes_vs_baseline's
    result); quality in the study's quality figure (fidelity for random weights), Δquality in
    its own units."""
    figure = group.quality or quality_figure(group.runs)
    refs = references(group.runs)
    rows = []
    for r in group.runs:
        c = changes[r.run_id]
        base = reference_of(r, refs)
        size = c["size_bytes"]
        value = figure.value(r) if figure else None
        base_value = figure.value(base) if figure and base else None
        rows.append({
            "technique": r.technique, "energy/inference": energy_with_ci(r),
            "ΔE": format_change(c["energy_j_per_inference"], "—"),
            "p50": format_latency(r.latency_ms_p50, ci95=r.latency_ms_p50_ci95),
            "Δlatency": format_change(c["latency_ms_p50"], "—"),
            "size": format_size(r.size_bytes),
            "size ratio": "—" if size is None else f"{1 + size.fraction:.2f}",
            "quality": "—" if value is None else short(value),
            "Δquality": "—" if value is None or base_value is None
            else format_delta(value - base_value),
            "source": r.energy_source or "",
        })
    return rows


def runs_frame(session_dir):
    """A session's runs.csv as a pandas DataFrame with numeric columns typed (for notebooks)."""
    import pandas as pd

    frame = pd.read_csv(session_dir / "runs.csv", dtype=str, keep_default_na=False)
    for column in NUMERIC_COLUMNS:
        if column in frame:
            frame[column] = pd.to_numeric(frame[column], errors="coerce")
    return frame

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
    training_comparisons,
)
from energy_console.core.analysis.findings import (
    RESOLVE_DIFFERENCE,
    TRADE_OFF_QUALITY_LOSS,
    findings,
    repeats_needed,
)
from energy_console.core.analysis.tables import drawn_table, fitted_table
from energy_console.core.spec.text import printable
from energy_console.core.store.records import NUMERIC_COLUMNS, RunRecord

# Other processes' CPU load above this share of all cores marks a run as disturbed (RAPL and the
# estimate are box-wide: that load is in its energy).
DISTURBED_LOAD_PCT = 10.0
NOISE_MARK = "~"


def to_float(value) -> float | None:
    """A runs.csv cell (or a number) as a float; None when empty or not a number."""
    if value is None or value == "":
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _scaled(value: float, units: tuple[tuple[str, float], ...]) -> tuple[str, float]:
    for unit, scale in units:
        if abs(value) >= scale:
            return unit, scale
    return units[-1]


ENERGY_UNITS = (("J", 1.0), ("mJ", 1e-3), ("µJ", 1e-6), ("nJ", 1e-9))


def format_energy(joules, missing: str = "-", ci95: float | None = None) -> str:
    """`12.3 mJ`, or `12.3 ±0.4 mJ` with an interval (both in the figure's unit)."""
    value = to_float(joules)
    if value is None:
        return missing
    unit, scale = _scaled(value, ENERGY_UNITS)
    return f"{value / scale:.3g}{_plus_minus(ci95, scale)} {unit}"


def energy_with_ci(record: RunRecord) -> str:
    return format_energy(record.energy_j_per_inference, ci95=record.energy_j_per_inference_ci95)


def format_latency(ms, missing: str = "-", ci95: float | None = None) -> str:
    value = to_float(ms)
    return missing if value is None else f"{value:.3g}{_plus_minus(ci95, 1.0)} ms"


def format_power(watts, missing: str = "-", ci95: float | None = None) -> str:
    value = to_float(watts)
    return missing if value is None else f"{value:.1f}{_plus_minus(ci95, 1.0, '.1f')} W"


def _plus_minus(ci95: float | None, scale: float, spec: str = "") -> str:
    if ci95 is None:
        return ""
    value = ci95 / scale
    return f" ±{value:{spec or ('.0f' if abs(value) >= 10 else '.2g')}}"


def format_co2e(grams, missing: str = "-") -> str:
    value = to_float(grams)
    return missing if value is None else f"{value:.3g} g"


def format_size(size_bytes, missing: str = "-") -> str:
    value = to_float(size_bytes)
    if value is None:
        return missing
    for unit in ("B", "KB", "MB"):
        if value < 1000:
            return f"{value:.3g} {unit}"
        value /= 1000
    return f"{value:.3g} GB"


def _short(value) -> str:
    number = to_float(value)
    return "" if number is None else f"{number:.4g}"


def format_change(change: Change | None, missing: str = "") -> str:
    """`+25 ±3%`; a change within noise reads `~+5 ±9%`; an exact one `-75%`."""
    if change is None:
        return missing
    mark = NOISE_MARK if change.ci95 != 0.0 and change.within_noise else ""
    interval = f" ±{change.ci95 * 100:.0f}" if change.ci95 else ""
    return f"{mark}{change.percent:+.0f}{interval}%"


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
    quality = f"{r.quality_metric or ''} {_short(r.quality_value)}".strip()
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
    notes = [printable(line) for line in report_notes(list(session.runs))]
    if notes:  # one print: each line wraps as it would alone, for a tenth of the time
        console.print("\n".join(notes), markup=False, highlight=False)
    return printable(out.getvalue(), one_line=False)


def _text_console(width: int, out: io.StringIO):
    """A rich Console that writes plain text (no colour codes) into `out`. Rich drops some
    control characters silently: outside text is made printable before it is printed (so they
    show), and the whole output again after."""
    from rich.console import Console

    return Console(width=width, file=out, color_system=None, force_terminal=False)


def report_notes(records: list[RunRecord]) -> list[str]:
    """What the table needs said beside it: reasons, noise, estimates, disturbances, faults,
    repeats needed, and the Pareto front with its best trade-off."""
    lines = []
    not_finished = [f"  {r.run_id} ({r.status}): {r.reason}" for r in records if not r.finished]
    if not_finished:
        lines += ["Skipped and failed runs:", *not_finished]
    lines.append(f"Changes are against the same model's baseline at the same input, with 95 % "
                 f"intervals; {NOISE_MARK} marks a change within noise (its interval includes "
                 "zero).")
    if any(r.energy_source in ("estimated", "mixed") for r in records if r.finished):
        lines.append("Energy is estimated (constant watts) where the source says so: there ΔE "
                     "only tracks latency.")
    busy = [f"  {r.run_id}: {r.other_cpu_load_pct:.0f}% of all cores"
            for r in records if r.finished and disturbed(r)]
    if busy:
        lines += [f"Runs disturbed by other CPU load (over {DISTURBED_LOAD_PCT:.0f}% of all "
                  "cores, counted in box-wide energy):", *busy]
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
    for group in findings(records):
        if not group.pareto:
            continue
        lines.append(f"Pareto front of {group.model_label} {group.input_size} "
                     "(nothing else has both lower energy per inference and better quality):")
        lines += [f"  {r.technique}: {energy_with_ci(r)}/inference, {r.quality_metric} "
                  f"{_short(r.quality_value)}" for r in group.pareto]
        if group.best_trade_off is not None:
            lines.append(f"  best trade-off: {group.best_trade_off.technique} (least energy "
                         f"within {TRADE_OFF_QUALITY_LOSS:.0%} of the baseline's quality)")
    return lines


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
    interval = f" ±{_count(even.ci95)}" if even.ci95 is not None else ""
    return f"pays back after {mark}{_count(even.inferences)}{interval} inferences"


def format_gain(record: RunRecord, gain: TrainingGain | None) -> str:
    if gain is None:
        return ""
    per_joule = "" if gain.per_joule is None else f", {gain.per_joule:+.3g} per J"
    return (f"; {record.quality_metric} {gain.quality_gain:+.3g} against "
            f"{gain.untrained.technique}{per_joule}")


def _count(value: float | None) -> str:
    if value is None:
        return "-"
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(value) >= scale:
            return f"{value / scale:.3g}{unit}"
    return f"{value:.3g}"


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
    """One model at one input: a row per technique with each change against the baseline and its
    interval (a GroupFindings from core.findings, and changes_vs_baseline's result)."""
    base = group.baseline
    rows = []
    for r in group.runs:
        c = changes[r.run_id]
        rows.append({
            "technique": r.technique, "energy/inference": energy_with_ci(r),
            "ΔE": format_change(c["energy_j_per_inference"], "—"),
            "p50": format_latency(r.latency_ms_p50, ci95=r.latency_ms_p50_ci95),
            "Δlatency": format_change(c["latency_ms_p50"], "—"),
            "size": format_size(r.size_bytes),
            "size ratio": "—" if r.size_bytes is None or base is None or not base.size_bytes
            else f"{r.size_bytes / base.size_bytes:.2f}",
            "quality": "—" if r.quality_value is None
            else f"{r.quality_metric} {r.quality_value:.4g}",
            "Δquality": "—" if base is None or r is base or r.quality_value is None
            or base.quality_value is None else f"{r.quality_value - base.quality_value:+.4g}",
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

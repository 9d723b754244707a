"""A session's runs as text: figures with their intervals, changes against each model's baseline
marked when within noise, and the study's answers (Pareto front, repeats needed)."""

from __future__ import annotations

import csv
import io

from energy_console.core.compare import Change, changes_vs_baseline, repeats_to_resolve
from energy_console.core.records import NUMERIC_COLUMNS, RunRecord

# Other processes' CPU load above this share of all cores marks a run as disturbed (RAPL and the
# estimate are box-wide: that load is in its energy).
DISTURBED_LOAD_PCT = 10.0
RESOLVE_DIFFERENCE = 0.05  # the difference `report` says how many repeats would resolve
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


def format_latency(ms, missing: str = "-", ci95: float | None = None) -> str:
    value = to_float(ms)
    return missing if value is None else f"{value:.3g}{_plus_minus(ci95, 1.0)} ms"


def format_power(watts, missing: str = "-", ci95: float | None = None) -> str:
    value = to_float(watts)
    return missing if value is None else f"{value:.1f}{_plus_minus(ci95, 1.0, '.1f')} W"


def _plus_minus(ci95: float | None, scale: float, spec: str = ".2g") -> str:
    return "" if ci95 is None else f" ±{ci95 / scale:{spec}}"


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


def format_report(session) -> str:
    """A finished (or live) session as text: one row per run with changes against its baseline,
    the reasons of skipped and failed runs, and the Pareto front. `session`: a LiveSnapshot."""
    from rich.console import Console
    from rich.table import Table

    records = list(session.runs)
    changes = changes_vs_baseline(records)
    table = Table(title=f"{session.name}: {len(records)} runs", expand=False)
    for header in ("model", "technique", "input", "status", "energy/inf", "ΔE", "power",
                   "p50", "Δt", "size", "Δsize", "quality", "source", "other CPU"):
        table.add_column(header, no_wrap=True)
    not_finished = []
    for r in records:
        c = changes[r.run_id]
        quality = f"{r.quality_metric or ''} {_short(r.quality_value)}".strip()
        what = (r.model.removeprefix("demo/"), r.technique, r.input_size)
        if not r.finished:
            table.add_row(*what, r.status, *[""] * 10)
            not_finished.append(f"  {r.run_id} ({r.status}): {r.reason}")
            continue
        table.add_row(
            *what, r.status,
            format_energy(r.energy_j_per_inference, ci95=r.energy_j_per_inference_ci95),
            format_change(c["energy_j_per_inference"]),
            format_power(r.avg_power_w, ci95=r.avg_power_w_ci95),
            format_latency(r.latency_ms_p50, ci95=r.latency_ms_p50_ci95),
            format_change(c["latency_ms_p50"]),
            format_size(r.size_bytes), format_change(c["size_bytes"]),
            quality, r.energy_source or "",
            f"{r.other_cpu_load_pct:.0f}%{'!' if disturbed(r) else ''}"
            if r.other_cpu_load_pct is not None else "",
        )
    # As wide as the table needs (a narrower terminal wraps it; `less -S` scrolls it), never
    # squeezed into unreadable columns.
    console = Console(width=10_000, file=io.StringIO())
    console.width = max(console.measure(table).maximum, 80)
    problems = getattr(session, "problems", ())  # what in the session's files did not read
    if problems:
        console.print("Problems reading this session (the rest is shown):",
                      *[f"  {p}" for p in problems], sep="\n", markup=False, highlight=False,
                      soft_wrap=True)
    console.print(table)
    if not_finished:
        console.print("Skipped and failed runs:", *not_finished, sep="\n")
    console.print(f"Changes are against the same model's baseline at the same input, with 95 % "
                  f"intervals; {NOISE_MARK} marks a change within noise (its interval includes "
                  "zero).")
    if any(r.energy_source == "estimated" for r in records if r.finished):
        console.print("Energy is estimated (constant watts) where the source says so: there ΔE "
                      "only tracks latency.")
    busy = [f"  {r.run_id}: {r.other_cpu_load_pct:.0f}% of all cores"
            for r in records if r.finished and disturbed(r)]
    if busy:
        console.print(f"Runs disturbed by other CPU load (over {DISTURBED_LOAD_PCT:.0f}% of all "
                      "cores, counted in box-wide energy):", *busy, sep="\n")
    console.print(*_repeats_needed(records), sep="\n")
    faulty = [f"  {r.run_id}: {r.energy_fault}" for r in records if r.energy_fault]
    if faulty:
        console.print("Runs whose energy is not trustworthy (a sensor failed or stood still):",
                      *faulty, sep="\n")
    if any(r.finished for r in records):
        front = pareto_front(records_frame(records))  # the rows that read
        console.print("Pareto front (no other run of the same model and input has both lower "
                      "energy per inference and better quality):")
        for _, run in front.iterrows():
            console.print(f"  {run['run_id']}: {format_energy(run['energy_j_per_inference'])}"
                          f"/inference, {run['quality_metric']} {run['quality_value']:.4g}")
    return console.file.getvalue()


def _repeats_needed(records: list[RunRecord]) -> list[str]:
    """Per model, from its baseline's spread: repeats that would resolve RESOLVE_DIFFERENCE."""
    lines = []
    for r in records:
        if r.technique != "baseline" or not r.finished:
            continue
        needed = repeats_to_resolve(r, RESOLVE_DIFFERENCE)
        if needed is not None:
            lines.append(f"  {r.model.removeprefix('demo/')} {r.input_size}: ~{needed} repeats "
                         f"(this session ran {r.repeats})")
    if lines:
        lines.insert(0, f"Repeats for a 95 % interval of ±{RESOLVE_DIFFERENCE:.0%} on energy per "
                     "inference, from each baseline's measured spread:")
    return lines


# Quality metrics where lower is better; every other metric (accuracy, fidelity) is higher-better.
LOWER_IS_BETTER = ("perplexity",)


def runs_frame(session_dir):
    """A session's runs.csv as a pandas DataFrame with numeric columns typed (for notebooks)."""
    import pandas as pd
    frame = pd.read_csv(session_dir / "runs.csv", dtype=str, keep_default_na=False)
    for column in NUMERIC_COLUMNS:
        if column in frame:
            frame[column] = pd.to_numeric(frame[column], errors="coerce")
    return frame


def records_frame(records):
    """RunRecords as runs_frame reads them from runs.csv (for rows already read and checked)."""
    import pandas as pd
    from energy_console.core.records import RUN_COLUMNS
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(RUN_COLUMNS)
    writer.writerows(r.csv_cells() for r in records)
    buffer.seek(0)
    frame = pd.read_csv(buffer, dtype=str, keep_default_na=False)
    for column in NUMERIC_COLUMNS:
        if column in frame:
            frame[column] = pd.to_numeric(frame[column], errors="coerce")
    return frame


def pareto_front(frame):
    """Finished runs that no other run of the same model and input size beats on both energy per
    inference and quality (higher accuracy/fidelity, lower perplexity)."""
    finished = frame[(frame["status"] == "finished") & frame["quality_value"].notna()]
    keep = []
    for _, group in finished.groupby(["model", "batch_size", "seq_len", "resolution"],
                                     dropna=False):
        for index, run in group.iterrows():
            sign = -1 if run["quality_metric"] in LOWER_IS_BETTER else 1
            quality = sign * group["quality_value"]
            better = ((group["energy_j_per_inference"] <= run["energy_j_per_inference"])
                      & (quality >= sign * run["quality_value"])
                      & ((group["energy_j_per_inference"] < run["energy_j_per_inference"])
                         | (quality > sign * run["quality_value"])))
            if not better.any():
                keep.append(index)
    return finished.loc[keep]

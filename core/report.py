"""Reading a session's runs: deltas against each model's baseline, and the text report."""

from __future__ import annotations

import io
from collections.abc import Sequence

from energy_console.core.records import NUMERIC_COLUMNS, RunRecord

DELTA_COLUMNS = ("energy_j_per_inference", "avg_power_w", "latency_ms_p50", "size_bytes")


def to_float(value) -> float | None:
    """A runs.csv cell (or a number) as a float; None when empty or not a number."""
    if value is None or value == "":
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def baseline_key(record: RunRecord) -> tuple:
    """Runs compared with each other: same model, device and input size."""
    return (record.model, record.device, record.batch_size, record.seq_len, record.resolution)


def deltas_vs_baseline(records: Sequence[RunRecord]) -> dict[str, dict[str, float | None]]:
    """Per run id, the relative change (fraction) of each DELTA_COLUMNS figure vs its baseline."""
    baselines = {baseline_key(r): r for r in records
                 if r.technique == "baseline" and r.finished}
    out: dict[str, dict[str, float | None]] = {}
    for record in records:
        base = baselines.get(baseline_key(record))
        if base is record:
            base = None  # a baseline has no change against itself
        changes: dict[str, float | None] = {}
        for column in DELTA_COLUMNS:
            value = getattr(record, column)
            reference = getattr(base, column) if base else None
            changes[column] = (value / reference - 1.0) if value is not None and reference else None
        out[record.run_id] = changes
    return out


def format_energy(joules, missing: str = "-") -> str:
    value = to_float(joules)
    if value is None:
        return missing
    for unit, scale in (("J", 1.0), ("mJ", 1e-3), ("µJ", 1e-6)):
        if abs(value) >= scale:
            return f"{value / scale:.3g} {unit}"
    return f"{value / 1e-9:.3g} nJ"


def format_latency(ms, missing: str = "-") -> str:
    value = to_float(ms)
    return missing if value is None else f"{value:.3g} ms"


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


def format_delta(fraction: float | None) -> str:
    return "" if fraction is None else f"{fraction * 100:+.0f}%"


def format_report(session) -> str:
    """A finished (or live) session as text: one row per run with changes against its baseline,
    the reasons of skipped and failed runs, and the Pareto front. `session`: a LiveSnapshot."""
    from rich.console import Console
    from rich.table import Table

    records = list(session.runs)
    deltas = deltas_vs_baseline(records)
    table = Table(title=f"{session.name}: {len(records)} runs", expand=False)
    for header in ("model", "technique", "input", "status", "energy/inf", "Δ", "power", "p50",
                   "Δ", "size", "Δ", "quality", "source"):
        table.add_column(header, no_wrap=True)
    not_finished = []
    for r in records:
        d = deltas[r.run_id]
        quality = f"{r.quality_metric or ''} {_short(r.quality_value)}".strip()
        what = (r.model.removeprefix("demo/"), r.technique, r.input_size)
        if not r.finished:
            table.add_row(*what, r.status, *[""] * 9)
            not_finished.append(f"  {r.run_id} ({r.status}): {r.reason}")
            continue
        table.add_row(
            *what, r.status,
            format_energy(r.energy_j_per_inference),
            format_delta(d["energy_j_per_inference"]),
            "" if r.avg_power_w is None else f"{r.avg_power_w:.1f} W",
            format_latency(r.latency_ms_p50), format_delta(d["latency_ms_p50"]),
            format_size(r.size_bytes), format_delta(d["size_bytes"]),
            quality, r.energy_source or "",
        )
    # As wide as the table needs (a narrower terminal wraps it; `less -S` scrolls it), never
    # squeezed into unreadable columns.
    text = io.StringIO()
    console = Console(width=10_000, file=text)
    console.width = max(console.measure(table).maximum, 80)
    console.print(table)
    if not_finished:
        console.print("Skipped and failed runs:", *not_finished, sep="\n")
    faulty = [f"  {r.run_id}: {r.energy_fault}" for r in records if r.energy_fault]
    if faulty:
        console.print("Runs whose energy is not trustworthy (a sensor failed or stood still):",
                      *faulty, sep="\n")
    if any(r.finished for r in records):
        front = pareto_front(runs_frame(session.path))
        console.print("Pareto front (no other run of the same model and input has both lower "
                      "energy per inference and better quality):")
        for _, run in front.iterrows():
            console.print(f"  {run['run_id']}: {format_energy(run['energy_j_per_inference'])}"
                          f"/inference, {run['quality_metric']} {run['quality_value']:.4g}")
    return text.getvalue()


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

"""Reading a session's runs: deltas against each model's baseline, and the text report."""

from __future__ import annotations

import io
from collections.abc import Sequence

DELTA_COLUMNS = ("energy_j_per_inference", "avg_power_w", "latency_ms_p50", "size_bytes")


def to_float(value) -> float | None:
    """A runs.csv cell (or a number) as a float; None when empty or not a number."""
    if value is None or value == "":
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def baseline_key(row: dict) -> tuple:
    """Runs compared with each other: same model, device and input size."""
    return (row.get("model"), row.get("device"), str(row.get("batch_size")),
            str(row.get("seq_len") or ""), str(row.get("resolution") or ""))


def deltas_vs_baseline(rows: Sequence[dict]) -> dict[str, dict[str, float | None]]:
    """Per run id, the relative change (fraction) of each DELTA_COLUMNS figure vs its baseline."""
    baselines = {
        baseline_key(r): r for r in rows
        if r.get("technique") == "baseline" and r.get("status") == "finished"
    }
    out: dict[str, dict[str, float | None]] = {}
    for row in rows:
        base = baselines.get(baseline_key(row))
        if base is row:
            base = None  # a baseline has no change against itself
        changes: dict[str, float | None] = {}
        for column in DELTA_COLUMNS:
            value = to_float(row.get(column))
            reference = to_float(base.get(column)) if base else None
            changes[column] = (value / reference - 1.0) if value is not None and reference else None
        out[row["run_id"]] = changes
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
    from rich.console import Console
    from rich.table import Table

    rows = session.runs
    deltas = deltas_vs_baseline(rows)
    table = Table(title=f"{session.name}: {len(rows)} runs", expand=False)
    for header in ("model", "technique", "input", "status", "energy/inf", "Δ", "power", "p50",
                   "Δ", "size", "Δ", "quality", "source"):
        table.add_column(header, no_wrap=True)
    not_finished = []
    for row in rows:
        d = deltas[row["run_id"]]
        quality = f"{row.get('quality_metric') or ''} {_short(row.get('quality_value'))}".strip()
        model, _, input_slug = row["run_id"].split("__")
        what = (model, row.get("technique") or "", input_slug)
        if row["status"] != "finished":
            table.add_row(*what, row["status"], *[""] * 9)
            not_finished.append(f"  {row['run_id']} ({row['status']}): {row.get('reason')}")
            continue
        table.add_row(
            *what, row["status"],
            format_energy(row["energy_j_per_inference"]),
            format_delta(d["energy_j_per_inference"]),
            f"{float(row['avg_power_w']):.1f} W",
            format_latency(row["latency_ms_p50"]), format_delta(d["latency_ms_p50"]),
            format_size(row["size_bytes"]), format_delta(d["size_bytes"]),
            quality, row["energy_source"],
        )
    # As wide as the table needs (a narrower terminal wraps it; `less -S` scrolls it), never
    # squeezed into unreadable columns.
    console = Console(width=10_000, file=io.StringIO())
    console.width = max(console.measure(table).maximum, 80)
    console.print(table)
    if not_finished:
        console.print("Skipped and failed runs:", *not_finished, sep="\n")
    if any(row.get("status") == "finished" for row in rows):
        front = pareto_front(runs_frame(session.path))
        console.print("Pareto front (no other run of the same model and input has both lower "
                      "energy per inference and better quality):")
        for _, run in front.iterrows():
            console.print(f"  {run['run_id']}: {format_energy(run['energy_j_per_inference'])}"
                          f"/inference, {run['quality_metric']} {run['quality_value']:.4g}")
    return console.file.getvalue()


# Quality metrics where lower is better; every other metric (accuracy, fidelity) is higher-better.
LOWER_IS_BETTER = ("perplexity",)


def runs_frame(session_dir):
    """A session's runs.csv as a pandas DataFrame with numeric columns typed (for notebooks)."""
    import pandas as pd
    from energy_console.core.results import RUN_COLUMNS

    frame = pd.read_csv(session_dir / "runs.csv", dtype=str, keep_default_na=False)
    text = {"run_id", "model", "task", "technique", "device", "status", "reason",
            "quality_metric", "energy_source", "sensors", "warnings"}
    for column in RUN_COLUMNS:
        if column in frame and column not in text:
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

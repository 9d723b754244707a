"""Runs as the tables show them: runs.csv rows with their change against the model's baseline."""

from __future__ import annotations

from dataclasses import dataclass

from energy_console.core.report import (
    deltas_vs_baseline,
    format_energy,
    format_latency,
    format_size,
)
from energy_console.tui import format as fmt


def input_size(row: dict[str, str]) -> str:
    """`b1-s128` / `b8-r224`: the input part of the run id."""
    return row["run_id"].rpartition("__")[2]


def energy_changes_pct(rows: list[dict[str, str]]) -> dict[str, float | None]:
    """Per run id: % change of energy per inference against its model's baseline run."""
    changes = {run_id: d["energy_j_per_inference"]
               for run_id, d in deltas_vs_baseline(rows).items()}
    return {run_id: None if c is None else c * 100.0 for run_id, c in changes.items()}


@dataclass(frozen=True)
class RunColumn:
    key: str
    label: str


LIVE_COLUMNS = (
    RunColumn("model", "Model"),
    RunColumn("technique", "Technique"),
    RunColumn("input", "Input"),
    RunColumn("energy", "J/inf"),
    RunColumn("energy_change", "ΔE %"),
    RunColumn("power", "Avg W"),
    RunColumn("p50", "p50"),
    RunColumn("size", "Size"),
    RunColumn("quality", "Quality"),
    RunColumn("status", "Status"),
)


def live_cells(row: dict[str, str], energy_change: float | None) -> tuple[str, ...]:
    """One runs-table row of the live view, in LIVE_COLUMNS order."""
    model = (row.get("model") or "").removeprefix("demo/")
    estimated = "estimated" in (row.get("energy_source") or "")
    energy = format_energy(row.get("energy_j_per_inference"), fmt.DASH)
    if estimated and energy != fmt.DASH:
        energy += " est"
    return (
        model,
        row.get("technique") or "",
        input_size(row),
        energy,
        fmt.percent_change(energy_change),
        fmt.watts(fmt.to_float(row.get("avg_power_w"))),
        format_latency(row.get("latency_ms_p50"), fmt.DASH),
        format_size(row.get("size_bytes"), fmt.DASH),
        fmt.quality(row),
        row.get("status") or "",
    )


def sort_key(value: object) -> tuple[int, float | str]:
    """Numbers before text, numbers by value, empty cells last."""
    number = fmt.to_float(value)
    if number is not None:
        return (0, number)
    text = str(value or "")
    return (1 if text else 2, text.lower())

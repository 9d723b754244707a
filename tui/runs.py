"""Runs as the tables show them: typed run records with their change against the baseline."""

from __future__ import annotations

from dataclasses import dataclass

from energy_console.core.records import RunRecord
from energy_console.core.report import (
    deltas_vs_baseline,
    format_energy,
    format_latency,
    format_size,
    to_float,
)
from energy_console.tui import format as fmt


def energy_changes_pct(records: list[RunRecord]) -> dict[str, float | None]:
    """Per run id: % change of energy per inference against its model's baseline run."""
    changes = {run_id: d["energy_j_per_inference"]
               for run_id, d in deltas_vs_baseline(records).items()}
    return {run_id: None if c is None else c * 100.0 for run_id, c in changes.items()}


@dataclass(frozen=True)
class RunColumn:
    key: str
    label: str
    fields: tuple[str, ...]  # the RunRecord fields the cell is made from


LIVE_COLUMNS = (
    RunColumn("model", "Model", ("model",)),
    RunColumn("technique", "Technique", ("technique",)),
    RunColumn("input", "Input", ("batch_size", "seq_len", "resolution")),
    RunColumn("energy", "J/inf", ("energy_j_per_inference", "energy_source")),
    RunColumn("energy_change", "ΔE %", ("energy_j_per_inference",)),
    RunColumn("power", "Avg W", ("avg_power_w",)),
    RunColumn("p50", "p50", ("latency_ms_p50",)),
    RunColumn("size", "Size", ("size_bytes",)),
    RunColumn("quality", "Quality", ("quality_metric", "quality_value", "fidelity_top1")),
    RunColumn("status", "Status", ("status",)),
)
SOURCE_MARKS = {"estimated": " est", "mixed": " mix", "faulty": " FAULT"}


def live_cells(record: RunRecord, energy_change: float | None) -> tuple[str, ...]:
    """One runs-table row of the live view, in LIVE_COLUMNS order."""
    energy = format_energy(record.energy_j_per_inference, fmt.DASH)
    if energy != fmt.DASH:
        energy += SOURCE_MARKS.get(record.energy_source or "", "")
    return (
        record.model.removeprefix("demo/"),
        record.technique,
        record.input_size,
        energy,
        fmt.percent_change(energy_change),
        fmt.watts(record.avg_power_w),
        format_latency(record.latency_ms_p50, fmt.DASH),
        format_size(record.size_bytes, fmt.DASH),
        fmt.quality(record),
        record.status,
    )


def sort_key(value: object) -> tuple[int, float | str]:
    """Numbers before text, numbers by value, empty cells last."""
    number = to_float(value)
    if number is not None:
        return (0, number)
    text = str(value or "")
    return (1 if text else 2, text.lower())

"""Runs as the tables show them: typed run records with their change against the baseline."""

from __future__ import annotations

import re
from dataclasses import dataclass

from energy_console.core.analysis.compare import Change, changes_vs_baseline
from energy_console.core.analysis.numbers import (
    format_change,
    format_co2e,
    format_energy,
    format_latency,
    format_size,
)
from energy_console.core.analysis.report import disturbed
from energy_console.core.store.records import RunRecord
from energy_console.tui import format as fmt
from rich.text import Text


def energy_changes(records: list[RunRecord]) -> dict[str, Change | None]:
    """Per run id: the change of energy per inference against its model's baseline run."""
    return {run_id: c["energy_j_per_inference"]
            for run_id, c in changes_vs_baseline(records).items()}


def change_cell(change: Change | None) -> Text:
    """Green for a saving, red for a cost, dim (and `~`) when within noise."""
    if change is None:
        return Text(fmt.DASH)
    style = "dim" if change.within_noise else ("green" if change.fraction < 0 else "red")
    return fmt.shown(format_change(change), style=style)


@dataclass(frozen=True)
class RunColumn:
    key: str
    label: str
    fields: tuple[str, ...]  # the RunRecord fields the cell is made from


LIVE_COLUMNS = (  # model and technique pinned; ΔE and status within 80 columns
    RunColumn("model", "Model", ("model",)),
    RunColumn("technique", "Technique", ("technique",)),
    RunColumn("input", "Input", ("batch_size", "seq_len", "resolution")),
    RunColumn("energy_change", "ΔE", ("energy_j_per_inference", "energy_j_per_inference_ci95")),
    RunColumn("energy", "J/inf", ("energy_j_per_inference", "energy_j_per_inference_ci95",
                                  "energy_source")),
    RunColumn("status", "Status", ("status", "other_cpu_load_pct", "disturbed", "precision")),
    RunColumn("power", "Avg W", ("avg_power_w",)),
    RunColumn("p50", "p50", ("latency_ms_p50", "latency_ms_p50_ci95")),
    RunColumn("size", "Size", ("size_bytes",)),
    RunColumn("quality", "Quality", ("quality_metric", "quality_value", "fidelity_top1",
                                     "fidelity_map")),
    RunColumn("co2e", "gCO2e/1k", ("co2e_g_per_1k_inferences",)),
)
SOURCE_MARKS = {"estimated": " est", "mixed": " mix", "faulty": " FAULT"}


def live_cells(record: RunRecord, energy_change: Change | None) -> dict[str, Text]:
    """One runs-table row of the live view, by LIVE_COLUMNS key (text as shown: never markup)."""
    energy = format_energy(record.energy_j_per_inference, fmt.DASH,
                           record.energy_j_per_inference_ci95)
    if energy != fmt.DASH:
        energy += SOURCE_MARKS.get(record.energy_source or "", "")
    status = record.status + (" busy" if record.finished and disturbed(record) else "")
    status += " disturbed" if record.finished and record.disturbed else ""
    status += " budget" if record.finished and record.precision == "budget" else ""
    cells: dict[str, str | Text] = {
        "model": record.model_label,
        "technique": record.technique,
        "input": record.input_size,
        "energy_change": change_cell(energy_change),
        "energy": energy,
        "status": status,
        "power": fmt.watts(record.avg_power_w),
        "p50": format_latency(record.latency_ms_p50, fmt.DASH, record.latency_ms_p50_ci95),
        "size": format_size(record.size_bytes, fmt.DASH),
        "quality": fmt.quality(record),
        "co2e": format_co2e(record.co2e_g_per_1k_inferences, fmt.DASH),
    }
    return {key: cell if isinstance(cell, Text) else fmt.shown(cell)
            for key, cell in cells.items()}


LEADING_NUMBER = re.compile(r"^~?([+-]?\d+(?:\.\d*)?(?:[eE][+-]?\d+)?)")


def sort_key(value: object) -> tuple[int, float | str]:
    """Numbers (a cell's leading number: `~+5 ±9%` sorts as 5) before text, empty cells last."""
    text = str(value or "").strip()
    match = LEADING_NUMBER.match(text)
    if match:
        return (0, float(match.group(1)))
    return (1 if text else 2, text.lower())

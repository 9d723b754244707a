"""Runs as the tables show them: runs.csv rows with their change against the model's baseline."""

from __future__ import annotations

from dataclasses import dataclass

from tui import format as fmt

BASELINE = "baseline"


def input_size(row: dict[str, str]) -> str:
    """`b1-s128` / `b8-r224`, the same slug as in run ids."""
    size = f"s{row['seq_len']}" if row.get("seq_len") else f"r{row.get('resolution') or '?'}"
    return f"b{row.get('batch_size') or '?'}-{size}"


def _group(row: dict[str, str]) -> tuple[str, ...]:
    return (row.get("model", ""), row.get("device", ""), input_size(row))


def baseline_changes(rows: list[dict[str, str]], column: str) -> dict[str, float | None]:
    """Per run id: % change of `column` against the same model and input size run as baseline."""
    baselines = {
        _group(r): fmt.to_float(r.get(column))
        for r in rows
        if r.get("technique") == BASELINE and r.get("status") not in ("skipped", "failed")
    }
    changes: dict[str, float | None] = {}
    for row in rows:
        base = baselines.get(_group(row))
        value = fmt.to_float(row.get(column))
        if row.get("technique") == BASELINE or base in (None, 0.0) or value is None:
            changes[row["run_id"]] = None
        else:
            changes[row["run_id"]] = (value - base) / base * 100.0  # type: ignore[operator]
    return changes


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
    energy = fmt.joules(fmt.to_float(row.get("energy_j_per_inference")))
    if estimated and energy != fmt.DASH:
        energy += " est"
    return (
        model,
        row.get("technique") or "",
        input_size(row),
        energy,
        fmt.percent_change(energy_change),
        fmt.watts(fmt.to_float(row.get("avg_power_w"))),
        fmt.milliseconds(fmt.to_float(row.get("latency_ms_p50"))),
        fmt.size(fmt.to_float(row.get("size_bytes"))),
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

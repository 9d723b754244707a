"""The detection study's table from a finished session: size, latency, energy and mAP of every
variant, each change against the study's baseline technique (default onnx-fp32: the same runtime,
no quantization) with its 95 % interval.

    python bench/detection_study_table.py results/<session>            # markdown on stdout
    python bench/detection_study_table.py results/<session> --baseline baseline
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from energy_console.core.analysis.compare import change_of
from energy_console.core.analysis.numbers import format_change
from energy_console.core.store.follow import read_session
from energy_console.core.store.records import RunRecord


def _number(value: float | None, ci: float | None = None, digits: int = 3) -> str:
    if value is None:
        return "—"
    return _significant(value, digits) if ci is None else \
        f"{_significant(value, digits)} ± {_significant(ci, 2)}"


def _significant(value: float, digits: int) -> str:
    """`digits` significant digits, never in exponent form (1840, not 1.84e+03)."""
    if value == 0:
        return "0"
    places = digits - 1 - math.floor(math.log10(abs(value)))  # negative: round to tens, ...
    return f"{round(value, places):.{max(places, 0)}f}"


def _delta(record: RunRecord, reference: RunRecord | None, column: str) -> str:
    if reference is None or record is reference:
        return "—"
    change = change_of(record, reference, column)
    return "—" if change is None else format_change(change)


def table(records: list[RunRecord], baseline: str) -> str:
    lines = ["| resolution | technique | runtime | size KB | Δsize | p50 ms | Δp50 | mJ / image "
             "| ΔE | mAP | ΔmAP | mAP@.5 | fidelity-mAP | boxes / image |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for resolution in sorted({r.resolution for r in records if r.resolution is not None}):
        rows = [r for r in records if r.resolution == resolution]
        reference = next((r for r in rows if r.technique == baseline and r.finished), None)
        for r in rows:
            if not r.finished:
                lines.append(f"| {resolution} | {r.technique} | skipped: {r.reason} |"
                             + " |" * 11)
                continue

            map_delta = "—"
            if reference is not None and r is not reference and r.quality_map is not None \
                    and reference.quality_map is not None:
                map_delta = f"{r.quality_map - reference.quality_map:+.4f}"
            energy_mj = None if r.energy_j_per_inference is None else \
                r.energy_j_per_inference * 1000
            energy_ci = None if r.energy_j_per_inference_ci95 is None else \
                r.energy_j_per_inference_ci95 * 1000
            lines.append(
                f"| {resolution} | {r.technique} | {r.runtime} | "
                f"{_number((r.size_bytes or 0) / 1000)} | "
                f"{_delta(r, reference, 'size_bytes')} | "
                f"{_number(r.latency_ms_p50, r.latency_ms_p50_ci95)} | "
                f"{_delta(r, reference, 'latency_ms_p50')} | "
                f"{_number(energy_mj, energy_ci)} | "
                f"{_delta(r, reference, 'energy_j_per_inference')} | "
                f"{_number(r.quality_map, digits=3)} | {map_delta} | "
                f"{_number(r.quality_map_50)} | {_number(r.fidelity_map)} | "
                f"{_number(r.detections_per_image)} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("session", type=Path)
    parser.add_argument("--baseline", default="onnx-fp32",
                        help="technique the changes are against (default onnx-fp32)")
    args = parser.parse_args()
    print(table(list(read_session(args.session).runs), args.baseline))


if __name__ == "__main__":
    main()

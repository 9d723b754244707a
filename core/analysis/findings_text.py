"""The findings as every view and format says them: one sentence per question, built from the
same GroupFindings for the text report, report.md, the trade-offs view and the JSON findings.
A winner is named (bold in markdown) only when decided; otherwise the candidates are
"indistinguishable at this precision" with what would separate them."""

from __future__ import annotations

from collections.abc import Sequence

from energy_console.core.analysis.compare import (
    RUNTIME_BASELINES,
    Change,
    missing_references,
    reference_technique,
    runtime_of,
)
from energy_console.core.analysis.findings import (
    MAX_REPEATS,
    GroupFindings,
    Ranking,
    findings,
)
from energy_console.core.analysis.numbers import (
    energy_with_ci,
    format_change,
    format_size,
    short,
)
from energy_console.core.store.records import RunRecord

Changes = dict[str, dict[str, Change | None]]


def _detail(group: GroupFindings, ranking: Ranking, run: RunRecord, changes: Changes) -> str:
    if ranking is group.smallest:
        return format_size(run.size_bytes)
    if ranking is group.best_quality and group.quality is not None:
        return f"{group.quality.name} {short(group.quality.value(run))}"
    change = changes.get(run.run_id, {}).get("energy_j_per_inference")
    versus = "" if change is None else \
        f", ΔE {format_change(change)} against {reference_technique(run)}"
    return f"{energy_with_ci(run)}/inference{versus}"


def _needed(ranking: Ranking) -> str:
    if ranking.needed is None or ranking.leader is None or ranking.rival is None:
        return ""
    pair = f"{ranking.leader.technique} from {ranking.rival.technique}"
    if ranking.needed_unit == "samples":
        return f"; an evaluation set of ~{ranking.needed:,} samples would separate {pair}"
    if ranking.needed >= MAX_REPEATS:
        return f"; over {MAX_REPEATS:,} repeats would be needed to separate {pair}"
    return f"; ~{ranking.needed:,} repeats would separate {pair}"


def ranking_line(group: GroupFindings, ranking: Ranking, changes: Changes,
                 bold: bool = False) -> str:
    """`least energy per inference: int8 (…)`; within noise: `…: indistinguishable at this
    precision: a, b; ~12 repeats would separate a from b`."""
    if ranking.leader is None:
        return f"{ranking.question}: — ({ranking.reason})"
    if ranking.winner is not None:
        name = f"**{ranking.winner.technique}**" if bold else ranking.winner.technique
        return f"{ranking.question}: {name} ({_detail(group, ranking, ranking.winner, changes)})"
    if len(ranking.tied) == 1:
        return f"{ranking.question}: none ({ranking.reason})"
    names = ", ".join(r.technique for r in ranking.tied)
    if ranking is group.smallest:  # bytes are exact: equal, not uncertain
        return f"{ranking.question}: {names} ({ranking.reason})"
    reason = f" ({ranking.reason})" if ranking.reason else ""
    return (f"{ranking.question}: indistinguishable at this precision: {names}{reason}"
            f"{_needed(ranking)}")


def pareto_line(group: GroupFindings) -> str:
    versus = group.quality.name if group.quality else "quality"
    front = ", ".join(r.technique for r in group.pareto) or "—"
    return f"Pareto front (energy vs {versus}; no other run better on both beyond noise): {front}"


def basis_lines(group: GroupFindings) -> list[str]:
    """What the comparisons stand on: which baseline each runtime is compared with, and which
    quality figure (fidelity where the task metric means nothing)."""
    runtimes = dict.fromkeys(runtime_of(r) for r in group.runs)
    lines = ["changes against " + ", ".join(
        f"{RUNTIME_BASELINES[runtime]} ({runtime})" for runtime in runtimes)]
    if group.quality is not None:
        why = " (random or untrained weights, or no labelled set: agreement with the " \
              "uncompressed model)" if group.quality.fidelity else ""
        lines.append(f"quality compared by {group.quality.name}, {group.quality.direction}{why}")
    return lines


def group_lines(group: GroupFindings, changes: Changes, bold: bool = False) -> list[str]:
    """The key findings of one model at one input, one sentence each."""
    return [*basis_lines(group),
            *(ranking_line(group, ranking, changes, bold) for ranking in group.rankings),
            pareto_line(group)]


def findings_notes(records: Sequence[RunRecord], changes: Changes) -> list[str]:
    """The report's findings section: per model and input, its key findings; then the runs
    whose runtime's baseline is missing."""
    lines = []
    for group in findings(records):
        lines.append(f"Findings for {group.model_label} {group.input_size}:")
        lines += [f"  {line}" for line in group_lines(group, changes)]
    return lines + missing_reference_notes(records)


def missing_reference_notes(records: Sequence[RunRecord]) -> list[str]:
    missing = missing_references(records)
    if not missing:
        return []
    return ["Not compared (their runtime's baseline is missing):",
            *(f"  {line}" for line in missing)]


def ranking_dict(group: GroupFindings, ranking: Ranking, changes: Changes) -> dict:
    return {
        "question": ranking.question,
        "winner": ranking.winner.run_id if ranking.winner else None,
        "leader": ranking.leader.run_id if ranking.leader else None,
        "indistinguishable": [r.run_id for r in ranking.tied] if not ranking.decided else [],
        "needed": ranking.needed, "needed_unit": ranking.needed_unit,
        "reason": ranking.reason,
        "text": ranking_line(group, ranking, changes),
    }


def group_dict(group: GroupFindings, changes: Changes) -> dict:
    """One model at one input's findings as JSON-ready data (the same objects as the text)."""
    figure = group.quality
    return {
        "model": group.model, "input_size": group.input_size,
        "references": {runtime_of(r): reference_technique(r) for r in group.runs},
        "quality_figure": None if figure is None else {
            "name": figure.name, "column": figure.column, "direction": figure.direction,
            "fidelity": figure.fidelity},
        "least_energy": ranking_dict(group, group.least_energy, changes),
        "smallest": ranking_dict(group, group.smallest, changes),
        "best_quality": ranking_dict(group, group.best_quality, changes),
        "best_trade_off": ranking_dict(group, group.best_trade_off, changes),
        "pareto_front": [r.run_id for r in group.pareto],
        "pareto_text": pareto_line(group),
    }

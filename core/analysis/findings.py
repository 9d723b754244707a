"""The study's answers, per model and input size: which variant uses least energy, which is
smallest, which keeps the best quality, which trade-off is best, and the Pareto front of energy
against quality; plus how many repeats a session would need to resolve a small difference."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from energy_console.core.analysis.compare import (  # noqa: F401 - quality_score is read from here too
    LOWER_IS_BETTER,
    baseline_key,
    quality_score,
    repeats_to_resolve,
)
from energy_console.core.store.records import RunRecord

# The best trade-off keeps quality within this fraction of the baseline's (relative).
TRADE_OFF_QUALITY_LOSS = 0.01
RESOLVE_DIFFERENCE = 0.05  # the difference the report says how many repeats would resolve


@dataclass(frozen=True)
class GroupFindings:
    """The answers for one model at one input size (its runs compared with each other)."""

    model: str
    input_size: str
    baseline: RunRecord | None
    least_energy: RunRecord | None
    smallest: RunRecord | None
    best_quality: RunRecord | None
    best_trade_off: RunRecord | None  # least energy among those within TRADE_OFF_QUALITY_LOSS
    pareto: tuple[RunRecord, ...]  # by energy, ascending
    runs: tuple[RunRecord, ...]

    @property
    def model_label(self) -> str:
        return self.runs[0].model_label


def pareto_front(records: Sequence[RunRecord]) -> list[RunRecord]:
    """Finished runs with a quality figure that no other run beats on both energy per inference
    and quality; `records` should be one model at one input size."""
    scored = [r for r in records if r.finished and quality_score(r) is not None
              and r.energy_j_per_inference is not None]
    front = []
    for run in scored:
        e, q = run.energy_j_per_inference, quality_score(run)
        beaten = any(
            o is not run and o.energy_j_per_inference <= e and quality_score(o) >= q  # type: ignore[operator]
            and (o.energy_j_per_inference < e or quality_score(o) > q)  # type: ignore[operator]
            for o in scored
        )
        if not beaten:
            front.append(run)
    return sorted(front, key=lambda r: r.energy_j_per_inference or 0.0)


def findings(records: Sequence[RunRecord]) -> list[GroupFindings]:
    """One GroupFindings per model and input size, in the order the runs came."""
    groups: dict[tuple, list[RunRecord]] = {}
    for record in records:
        if record.finished:
            groups.setdefault(baseline_key(record), []).append(record)
    return [_group(runs) for runs in groups.values()]


def _group(runs: list[RunRecord]) -> GroupFindings:
    baseline = next((r for r in runs if r.technique == "baseline"), None)
    with_energy = [r for r in runs if r.energy_j_per_inference is not None]
    with_size = [r for r in runs if r.size_bytes is not None]
    with_quality = [r for r in runs if quality_score(r) is not None]
    return GroupFindings(
        model=runs[0].model,
        input_size=runs[0].input_size,
        baseline=baseline,
        least_energy=min(with_energy, key=lambda r: r.energy_j_per_inference or 0.0,
                         default=None),
        smallest=min(with_size, key=lambda r: r.size_bytes or 0, default=None),
        best_quality=max(with_quality, key=lambda r: quality_score(r) or 0.0, default=None),
        best_trade_off=_best_trade_off(baseline, with_energy),
        pareto=tuple(pareto_front(runs)),
        runs=tuple(runs),
    )


def _best_trade_off(baseline: RunRecord | None, runs: list[RunRecord]) -> RunRecord | None:
    """Least energy among the variants whose quality stays within TRADE_OFF_QUALITY_LOSS of the
    baseline's (relative); None without a baseline quality to hold them to."""
    reference = quality_score(baseline) if baseline else None
    if reference is None:
        return None
    floor = reference - abs(reference) * TRADE_OFF_QUALITY_LOSS
    kept = [r for r in runs if (quality_score(r) is not None and quality_score(r) >= floor)]  # type: ignore[operator]
    return min(kept, key=lambda r: r.energy_j_per_inference or 0.0, default=None)


def repeats_needed(records: Sequence[RunRecord]) -> list[str]:
    """Per model and input, from its baseline's spread: repeats that would resolve
    RESOLVE_DIFFERENCE of energy per inference."""
    lines = []
    for r in records:
        if r.technique != "baseline" or not r.finished:
            continue
        needed = repeats_to_resolve(r, RESOLVE_DIFFERENCE)
        if needed is not None:
            lines.append(f"{r.model_label} {r.input_size}: ~{needed} repeats "
                         f"(this session ran {r.repeats})")
    return lines

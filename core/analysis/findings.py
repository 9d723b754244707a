"""The study's answers, per model and input size: which variant uses least energy, which is
smallest, which keeps the best quality, which trade-off is best, and the Pareto front of energy
against quality; plus how many repeats a session would need to resolve a small difference.

A conclusion is a claim: a run leads only when its difference from every other candidate lies
outside noise (the interval of the difference excludes zero). Otherwise the candidates within
noise of the first are *tied*, and the finding says how many repeats (or evaluation samples)
would separate the closest two. Every view and format renders these objects (findings_text)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from energy_console.core.analysis.compare import (
    baseline_key,
    is_reference,
    reference_of,
    references,
    relative_change,
    repeats_to_resolve,
)
from energy_console.core.analysis.quality_figure import (
    QualityFigure,
    quality_difference_real,
    quality_figure,
)
from energy_console.core.measure.stats import t95
from energy_console.core.store.records import RunRecord

# The best trade-off keeps quality within this fraction of its baseline's (relative).
TRADE_OFF_QUALITY_LOSS = 0.01
RESOLVE_DIFFERENCE = 0.05  # the difference the report says how many repeats would resolve
MAX_REPEATS = 10_000  # beyond this, "more than" (the figures may well be equal)


@dataclass(frozen=True)
class Ranking:
    """One question's answer. `leader` is first by the figures; `tied` holds it and every run
    the measurement cannot tell from it; `decided` only when the answer is a real difference.
    `needed` (in `needed_unit`: repeats or samples) would separate the leader from its closest
    rival; None when unknown. `reason` says why nothing was decided when no figure could."""

    question: str
    leader: RunRecord | None
    tied: tuple[RunRecord, ...] = ()
    rival: RunRecord | None = None  # the closest other run, when tied
    decided: bool = False
    needed: int | None = None
    needed_unit: str = "repeats"
    reason: str = ""

    @property
    def winner(self) -> RunRecord | None:
        return self.leader if self.decided else None


@dataclass(frozen=True)
class GroupFindings:
    """The answers for one model at one input size (its runs compared with each other)."""

    model: str
    input_size: str
    baseline: RunRecord | None
    quality: QualityFigure | None  # the figure quality is compared by (fidelity or task)
    least_energy: Ranking
    smallest: Ranking
    best_quality: Ranking
    best_trade_off: Ranking  # least energy among those within TRADE_OFF_QUALITY_LOSS
    pareto: tuple[RunRecord, ...]  # by energy, ascending
    runs: tuple[RunRecord, ...]

    @property
    def model_label(self) -> str:
        return self.runs[0].model_label

    @property
    def rankings(self) -> tuple[Ranking, ...]:
        return (self.least_energy, self.smallest, self.best_quality, self.best_trade_off)


def energy_differs(a: RunRecord, b: RunRecord) -> bool:
    """Energy per inference of a and b differ beyond both intervals (log-ratio interval)."""
    change = relative_change(a.energy_j_per_inference, a.energy_j_per_inference_ci95,
                             b.energy_j_per_inference, b.energy_j_per_inference_ci95)
    return change is not None and not change.within_noise


def repeats_to_separate(a: RunRecord, b: RunRecord) -> int | None:
    """Repeats (of each run) whose 95 % interval of the energy ratio would exclude 1, from both
    runs' measured spread; None without spreads, MAX_REPEATS when beyond it."""
    spreads = []
    for r in (a, b):
        n, energy, ci = r.repeats, r.energy_j_per_inference, r.energy_j_per_inference_ci95
        if not n or n < 2 or ci is None or not energy or energy <= 0:
            return None
        spreads.append(ci * math.sqrt(n) / t95(n - 1) / energy)
    ea, eb = a.energy_j_per_inference, b.energy_j_per_inference
    gap = abs(math.log(ea / eb)) if ea and eb and ea > 0 and eb > 0 else 0.0
    sd = math.hypot(*spreads)
    for needed in range(2, 31):  # t shrinks with the degrees of freedom; 1.96 beyond 30
        if t95(needed - 1) * sd / math.sqrt(needed) < gap:
            return needed
    if gap == 0:
        return MAX_REPEATS
    return min(MAX_REPEATS, max(31, math.ceil((1.96 * sd / gap) ** 2)))


def samples_to_separate(figure: QualityFigure, a: RunRecord, b: RunRecord) -> int | None:
    """Evaluation samples over which a share's difference would exceed its 95 % interval."""
    va, vb = figure.value(a), figure.value(b)
    if va is None or vb is None or figure.ci95(a) is None or va == vb:
        return None
    return math.ceil(1.96 ** 2 * (va * (1 - va) + vb * (1 - vb)) / (va - vb) ** 2)


def _rank_energy(question: str, runs: Sequence[RunRecord]) -> Ranking:
    with_energy = [r for r in runs if r.energy_j_per_inference is not None]
    if not with_energy:
        return Ranking(question, None, reason="no energy figure")
    leader = min(with_energy, key=lambda r: r.energy_j_per_inference or 0.0)
    tied = tuple(r for r in with_energy if r is leader or not energy_differs(r, leader))
    rivals = [r for r in tied if r is not leader]
    closest = min(rivals, key=lambda r: r.energy_j_per_inference or 0.0, default=None)
    needed = repeats_to_separate(leader, closest) if closest else None
    unknown = any(r.energy_j_per_inference_ci95 is None for r in tied) and len(tied) > 1
    return Ranking(question, leader, tied, closest, decided=len(tied) == 1, needed=needed,
                   reason="no interval where a run had one repeat: measure at least 2" if unknown
                   else "")


def _rank_size(runs: Sequence[RunRecord]) -> Ranking:
    sized = [r for r in runs if r.size_bytes is not None]
    if not sized:
        return Ranking("smallest", None, reason="no size figure")
    leader = min(sized, key=lambda r: r.size_bytes or 0)
    tied = tuple(r for r in sized if r.size_bytes == leader.size_bytes)
    return Ranking("smallest", leader, tied, decided=len(tied) == 1,
                   reason="" if len(tied) == 1 else "the same size")


def _rank_quality(figure: QualityFigure | None, runs: Sequence[RunRecord]) -> Ranking:
    question = "best quality"
    scored = [r for r in runs if figure is not None and figure.score(r) is not None]
    if figure is None or not scored:
        return Ranking(question, None, reason="no quality figure")
    question = f"best quality ({figure.name})"
    leader = max(scored, key=lambda r: figure.score(r) or 0.0)
    tied = tuple(r for r in scored
                 if r is leader or not quality_difference_real(figure, r, leader))
    rivals = [r for r in tied if r is not leader]
    closest = max(rivals, key=lambda r: figure.score(r) or 0.0, default=None)
    needed = samples_to_separate(figure, leader, closest) if closest else None
    reason = "" if figure.ci95(leader) is not None else f"{figure.name} has no known interval"
    return Ranking(question, leader, tied, closest, decided=len(tied) == 1, needed=needed,
                   needed_unit="samples", reason=reason if len(tied) > 1 else "")


def _best_trade_off(figure: QualityFigure | None, runs: Sequence[RunRecord],
                    refs: dict) -> Ranking:
    """Least energy among the variants whose quality stays within TRADE_OFF_QUALITY_LOSS of
    their runtime's baseline (relative); decided only when it also saves energy against that
    baseline beyond noise and leads the others beyond noise (its baseline among them)."""
    question = f"best trade-off (least energy within {TRADE_OFF_QUALITY_LOSS:.0%} of the " \
               "baseline's quality)"
    if figure is None:
        return Ranking(question, None, reason="no quality figure")
    kept = []
    for r in runs:
        base = r if is_reference(r) else reference_of(r, refs)
        reference, score = (figure.score(base) if base else None), figure.score(r)
        if reference is not None and score is not None and \
                score >= reference - abs(reference) * TRADE_OFF_QUALITY_LOSS:
            kept.append(r)
    ranking = _rank_energy(question, kept)
    leader = ranking.leader
    if leader is None:
        return Ranking(question, None, reason="no run with a baseline's quality to hold to")
    if ranking.decided and is_reference(leader):
        return Ranking(question, leader, ranking.tied,
                       reason="no variant at that quality uses less energy than its baseline")
    return ranking


def pareto_front(records: Sequence[RunRecord], figure: QualityFigure | None = None
                 ) -> list[RunRecord]:
    """Finished runs with a quality figure that no other run beats beyond noise: lower energy
    per inference (outside both intervals) without worse quality, or better quality (outside
    its uncertainty) without more energy. `records` should be one model at one input size."""
    figure = figure or quality_figure(records)
    if figure is None:
        return []
    scored = [r for r in records if r.finished and figure.score(r) is not None
              and r.energy_j_per_inference is not None]

    def beats(o: RunRecord, r: RunRecord) -> bool:
        lower = energy_differs(o, r) and o.energy_j_per_inference < r.energy_j_per_inference  # type: ignore[operator]
        higher = energy_differs(o, r) and not lower
        q_real = quality_difference_real(figure, o, r)
        better = q_real and figure.score(o) > figure.score(r)  # type: ignore[operator]
        worse = q_real and not better
        return not higher and not worse and (lower or better)

    front = [r for r in scored if not any(beats(o, r) for o in scored if o is not r)]
    return sorted(front, key=lambda r: r.energy_j_per_inference or 0.0)


def findings(records: Sequence[RunRecord]) -> list[GroupFindings]:
    """One GroupFindings per model and input size, in the order the runs came."""
    groups: dict[tuple, list[RunRecord]] = {}
    for record in records:
        if record.finished:
            groups.setdefault(baseline_key(record), []).append(record)
    refs = references(records)
    return [_group(runs, refs) for runs in groups.values()]


def _group(runs: list[RunRecord], refs: dict) -> GroupFindings:
    figure = quality_figure(runs)
    return GroupFindings(
        model=runs[0].model,
        input_size=runs[0].input_size,
        baseline=next((r for r in runs if r.technique == "baseline"), None),
        quality=figure,
        least_energy=_rank_energy("least energy per inference", runs),
        smallest=_rank_size(runs),
        best_quality=_rank_quality(figure, runs),
        best_trade_off=_best_trade_off(figure, runs, refs),
        pareto=tuple(pareto_front(runs, figure)),
        runs=tuple(runs),
    )


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

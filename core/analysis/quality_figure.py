"""Which quality figure a study's runs are compared by, and its uncertainty.

Task quality (accuracy, mAP, perplexity) means something only with labels and trained weights. For
a model with random weights (a demo, or a checkpoint whose head was initialised at random) or
without a labelled set, the figure that means something is fidelity: agreement with the
uncompressed model's outputs (top-1 or next-token agreement; for generation, token agreement).

A quality difference is judged against its own uncertainty. A share over the evaluation set
(accuracy, agreement, pass@1) has a binomial 95 % interval (Agresti-Coull, which stays honest at
0 and 1); the two runs' intervals are combined in quadrature, which is conservative for a paired
comparison on one set. Perplexity carries its bootstrap interval over the sequences
(quality_value_ci95). A figure with no known interval (mAP, chrF) never ranks runs.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from energy_console.core.store.records import RunRecord

# Quality metrics where lower is better; every other metric (accuracy, fidelity) is higher-better.
LOWER_IS_BETTER = ("perplexity", "prompt_perplexity")
# Shares over the evaluation set: a binomial interval applies.
SHARES = ("accuracy", "top1_agreement", "next_token_agreement", "fidelity_top1",
          "fidelity_token_agreement", "fidelity_exact_match", "quality_pass_at_1")
FIDELITY_METRICS = ("top1_agreement", "next_token_agreement", "fidelity_map",
                    "cosine_similarity")
FIDELITY_NOTE = "only meaningful as fidelity"  # the model sources' warning on random weights
# Fidelity figures in order of preference, by workload (the record's column, a short name).
FIDELITY_COLUMNS = {
    "generate": (("fidelity_token_agreement", "token agreement"),
                 ("fidelity_exact_match", "exact match"), ("fidelity_chrf", "chrF")),
    "": (("fidelity_top1", "top-1 agreement"), ("fidelity_map", "fidelity-mAP"),
         ("fidelity_cosine", "cosine similarity")),
}


@dataclass(frozen=True)
class QualityFigure:
    """The quality figure of one study: its name, where it is read and which way is better."""

    name: str
    column: str  # a RunRecord field, or "quality_value" for the task metric
    lower_is_better: bool = False
    fidelity: bool = False

    def value(self, record: RunRecord) -> float | None:
        return getattr(record, self.column)

    def score(self, record: RunRecord) -> float | None:
        """The value oriented so that higher is better."""
        value = self.value(record)
        return None if value is None else (-value if self.lower_is_better else value)

    def ci95(self, record: RunRecord) -> float | None:
        """Half-width of the value's 95 % interval; None where none is known."""
        value = self.value(record)
        metric = record.quality_metric if self.column == "quality_value" else self.column
        if value is not None and self.column == "quality_value" and \
                record.quality_value_ci95 is not None:
            return record.quality_value_ci95
        if value is None or metric not in SHARES or not record.quality_samples:
            return None
        n = record.quality_samples + 4
        p = (value * record.quality_samples + 2) / n
        return 1.96 * math.sqrt(p * (1 - p) / n)

    @property
    def direction(self) -> str:
        return "lower is better" if self.lower_is_better else "higher is better"


def is_random_weights(record: RunRecord) -> bool:
    return any(FIDELITY_NOTE in warning for warning in record.warnings)


def quality_figure(runs: Sequence[RunRecord]) -> QualityFigure | None:
    """The figure one study (a model at one input) is compared by: fidelity for random-weight
    models and where the task metric is itself a fidelity figure; the task metric otherwise."""
    metrics = {r.quality_metric for r in runs if r.quality_value is not None}
    untrained = any(is_random_weights(r) for r in runs)
    if len(metrics) == 1 and not untrained and not metrics <= set(FIDELITY_METRICS):
        metric = metrics.pop() or "quality"
        return QualityFigure(metric, "quality_value", metric in LOWER_IS_BETTER)
    workload = "generate" if any(r.workload == "generate" for r in runs) else ""
    for column, name in FIDELITY_COLUMNS[workload]:
        if any(getattr(r, column) is not None for r in runs):
            return QualityFigure(f"fidelity: {name}", column, fidelity=True)
    if len(metrics) == 1:  # a fidelity metric in quality_value only
        metric = metrics.pop() or "quality"
        return QualityFigure(metric, "quality_value", fidelity=True)
    return None


def quality_difference_real(figure: QualityFigure, a: RunRecord, b: RunRecord) -> bool:
    """Whether a and b differ in quality beyond both figures' uncertainty."""
    va, vb = figure.value(a), figure.value(b)
    ca, cb = figure.ci95(a), figure.ci95(b)
    if va is None or vb is None or ca is None or cb is None:
        return False
    return abs(va - vb) > math.hypot(ca, cb)


def score_of(figure: QualityFigure | None) -> Callable[[RunRecord], float | None]:
    return (lambda r: None) if figure is None else figure.score

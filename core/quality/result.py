"""The quality figures of one run, as result.json and runs.csv hold them."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

# Extra runs.csv columns, in order; quality_metric / quality_value hold the task metric.
QUALITY_CSV_COLUMNS = (
    "quality_metric",
    "quality_value",
    "quality_value_ci95",
    "quality_macro_f1",
    "fidelity_top1",
    "fidelity_kl",
    "fidelity_cosine",
    "fidelity_exact_match",
    "fidelity_token_agreement",
    "fidelity_chrf",
    "quality_pass_at_1",
    "quality_pass_at_1_tasks",
    "quality_map",
    "quality_map_50",
    "quality_map_small",
    "quality_map_medium",
    "quality_map_large",
    "fidelity_map",
    "detections_per_image",
    "quality_samples",
    "quality_seconds",
)


@dataclass
class QualityResult:
    """Task metric and fidelity to the uncompressed model, on the same inputs.

    `metric` is accuracy (classifiers with a dataset), perplexity (causal LMs with a text),
    prompt_perplexity (generate runs: the perplexity of the prompts' own tokens), map
    (detectors with a COCO JSON), or, without a dataset, the fidelity figure of the task:
    top1_agreement, next_token_agreement, fidelity_map or cosine_similarity. mean_kl is
    KL(uncompressed || this) in nats, averaged over samples (over
    token positions for causal LMs).
    """

    task: str
    metric: str
    value: float | None
    samples: int
    seconds: float
    dataset: str | None = None  # path of the dataset, None for synthetic inputs
    value_ci95: float | None = None  # half-width of value's 95 % interval (bootstrap), if known
    accuracy: float | None = None
    macro_f1: float | None = None
    perplexity: float | None = None
    top1_agreement: float | None = None
    next_token_agreement: float | None = None
    mean_kl: float | None = None
    cosine_similarity: float | None = None
    exact_match: float | None = None  # generate runs: greedy outputs equal to the reference's
    token_agreement: float | None = None  # generate runs: reference tokens matched in place
    chrf: float | None = None  # generate runs: chrF 0-100 against the reference's text
    pass_at_1: float | None = None  # generate runs with tests: share of greedy completions passing
    pass_at_1_tasks: int | None = None  # tasks pass@1 ran
    map: float | None = None  # detection with a dataset: COCO mAP@[.5:.95] against its boxes
    map_50: float | None = None
    map_small: float | None = None
    map_medium: float | None = None
    map_large: float | None = None
    fidelity_map: float | None = None  # detection: mAP against the uncompressed model's boxes
    detections_per_image: float | None = None
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def csv_columns(self) -> dict[str, Any]:
        """The QUALITY_CSV_COLUMNS of this run's runs.csv row (None where not applicable)."""
        top1 = self.top1_agreement
        if top1 is None:
            top1 = self.next_token_agreement
        return {
            "quality_metric": self.metric,
            "quality_value": self.value,
            "quality_value_ci95": self.value_ci95,
            "quality_macro_f1": self.macro_f1,
            "fidelity_top1": top1,
            "fidelity_kl": self.mean_kl,
            "fidelity_cosine": self.cosine_similarity,
            "fidelity_exact_match": self.exact_match,
            "fidelity_token_agreement": self.token_agreement,
            "fidelity_chrf": self.chrf,
            "quality_pass_at_1": self.pass_at_1,
            "quality_pass_at_1_tasks": self.pass_at_1_tasks,
            "quality_map": self.map,
            "quality_map_50": self.map_50,
            "quality_map_small": self.map_small,
            "quality_map_medium": self.map_medium,
            "quality_map_large": self.map_large,
            "fidelity_map": self.fidelity_map,
            "detections_per_image": self.detections_per_image,
            "quality_samples": self.samples,
            "quality_seconds": round(self.seconds, 3),
        }

"""Quality of a run: task accuracy or perplexity on a dataset, and fidelity to the uncompressed
model on the same inputs.

The worker calls `prepare_reference` on the uncompressed model before compression, then `evaluate`
on the compressed module after the energy measurement, never inside an energy window.
"""

from core.datasets import DatasetError
from core.quality.evaluate import evaluate
from core.quality.reference import Reference, prepare_reference
from core.quality.result import QUALITY_CSV_COLUMNS, QualityResult

__all__ = [
    "QUALITY_CSV_COLUMNS",
    "DatasetError",
    "QualityResult",
    "Reference",
    "evaluate",
    "prepare_reference",
]

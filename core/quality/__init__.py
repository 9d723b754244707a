"""Quality of a run: task accuracy or perplexity on a dataset, and fidelity to the uncompressed
model on the same inputs.

The worker calls `prepare_reference` on the uncompressed model before compression, then `evaluate`
on the compressed module after the energy measurement, never inside an energy window.
"""

from energy_console.core.quality.datasets import DatasetError
from energy_console.core.quality.evaluate import evaluate
from energy_console.core.quality.reference import Reference, prepare_reference
from energy_console.core.quality.result import QUALITY_CSV_COLUMNS, QualityResult

__all__ = [
    "QUALITY_CSV_COLUMNS",
    "DatasetError",
    "QualityResult",
    "Reference",
    "evaluate",
    "prepare_reference",
]

"""What a workload module declares as WORKLOAD: how it prepares a variant's runs and how it
measures one of them (core.worker.workloads lists the modules)."""

from __future__ import annotations

from typing import Any, Protocol

from energy_console.core.spec.workloads import Workload
from energy_console.core.store.figures import WorkerResult
from energy_console.core.worker.variant import Mark, Variant, VariantStart


class WorkerWorkload(Protocol):
    name: str  # infer, detect, generate, train
    serves: Workload  # the profile's workload whose runs it measures
    # the model tasks it claims among that workload's runs; empty: every task no entry claims
    tasks: frozenset[str]

    def prepare(self, start: VariantStart, mark: Mark) -> Variant:
        """Everything the variant's runs share: each run's reference (before compression), then
        the variant compressed. A failure of one run's part is kept for that run's turn."""
        ...

    def measure(self, variant: Variant, spec: Any, mark: Mark) -> WorkerResult:
        """One run (input size) of the prepared variant: its inputs, timed windows, quality."""
        ...

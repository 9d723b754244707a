"""What a run times, one module per workload: infer, detect (infer on an object-detection
model: pre- and post-processing timed with the detector), generate, train.
"""

from __future__ import annotations

import importlib

from energy_console.core.spec.workloads import Workload
from energy_console.core.worker.workloads.base import WorkerWorkload

# A new workload is one module defining WORKLOAD (a WorkerWorkload) and one line here.
WORKLOAD_MODULES = (
    "energy_console.core.worker.workloads.infer",
    "energy_console.core.worker.workloads.detect",
    "energy_console.core.worker.workloads.generate",
    "energy_console.core.worker.workloads.train",
)


def workloads() -> dict[str, WorkerWorkload]:
    """Every workload by its name, in WORKLOAD_MODULES order."""
    found = (importlib.import_module(module).WORKLOAD for module in WORKLOAD_MODULES)
    return {workload.name: workload for workload in found}


def workload_for(workload: Workload, task: str) -> WorkerWorkload:
    """What measures a run of the profile's `workload` on a model of `task`: the entry of that
    workload that claims the task, else the one that claims no task in particular."""
    serving = [w for w in workloads().values() if w.serves == workload]
    claimed = (w for w in serving if task in w.tasks)
    return next(claimed, next(w for w in serving if not w.tasks))

"""The worker's workload registry: one module per workload, picked by (workload, task)."""

import pytest
from energy_console.core.spec.tasks import TASKS
from energy_console.core.spec.workloads import Workload
from energy_console.core.worker.workloads import workload_for, workloads


def test_every_profile_workload_has_one_entry_for_any_task():
    for workload in Workload:
        for task in TASKS:
            assert workload_for(workload, task).serves == workload


@pytest.mark.parametrize(("workload", "task", "name"), [
    (Workload.INFER, "object-detection", "detect"),
    (Workload.INFER, "image-classification", "infer"),
    (Workload.INFER, "causal-lm", "infer"),
    (Workload.GENERATE, "causal-lm", "generate"),
    (Workload.TRAIN, "object-detection", "train"),
])
def test_an_infer_run_of_a_detector_is_measured_by_detect(workload, task, name):
    assert workload_for(workload, task).name == name


def test_names_are_unique_and_each_task_is_claimed_once_per_workload():
    entries = list(workloads().values())
    assert len(entries) == len({w.name for w in entries}) == 4
    for workload in Workload:
        claims = [task for w in entries if w.serves == workload for task in w.tasks]
        assert len(claims) == len(set(claims))
        assert sum(1 for w in entries if w.serves == workload and not w.tasks) == 1

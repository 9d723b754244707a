"""The `infer` workload: one forward pass per iteration, on the run's own synthetic inputs.

Before compressing, each run prepares its uncompressed reference outputs and, where the technique
leaves them as they are, the FLOPs of one batch; after the windows, the run's quality against that
reference. A technique that trains (finetune, qat) trains here, while compressing
(CompressionTrainer), its timed windows marked as the first run's.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from energy_console.core.compression import NotApplicable, TechniqueContext
from energy_console.core.quality.evaluate import evaluate
from energy_console.core.quality.reference import prepare_reference
from energy_console.core.spec.workloads import Workload
from energy_console.core.store.figures import WorkerResult
from energy_console.core.worker.flops import changes_flops, count_flops
from energy_console.core.worker.variant import (
    Mark,
    Variant,
    VariantStart,
    cast_inputs,
    compressed,
    inference_autograd,
    prepared_for,
    run_marks,
    worker_result,
)
from energy_console.core.worker.windows import (
    REPEAT_PHASE,
    Iteration,
    measure_windows,
)
from energy_console.core.worker.workloads.training import CompressionTrainer


@dataclass(frozen=True)
class PreparedInfer:
    reference: Any  # quality.Reference
    flops_per_batch: float | None  # counted on the uncompressed model (None: after compression)


def input_size(loaded, spec) -> int:
    size = spec.seq_len if loaded.family == "text" else spec.resolution
    if size is None:  # task learnt from the config differs from what the plan assumed
        raise NotApplicable(
            f"{spec.model.ref} is a {loaded.task} model but the run was planned with the other "
            "input kind; add `task:` to the model in the profile"
        )
    return size


def uncompressed_flops(loaded, spec, size: int, reference_key: str,
                       cache_dir: Path) -> float | None:
    """FLOPs of one batch through the uncompressed model, counted once per model and input set
    (the reference's key covers both) and kept beside the reference: every variant whose
    technique leaves the FLOPs as they are reuses it."""
    path = cache_dir / f"flops-{reference_key[:20]}.json"
    try:
        return json.loads(path.read_text())["flops_per_batch"]
    except (OSError, ValueError, KeyError):
        pass
    flops = count_flops(loaded.module, loaded.make_inputs(spec.batch_size, size, seed=0))
    with contextlib.suppress(OSError):  # no room: counted again next time
        cache_dir.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"flops_per_batch": flops}))
        os.replace(tmp, path)
    return flops


class InferWorkload:
    name = "infer"
    serves = Workload.INFER
    tasks: frozenset[str] = frozenset()  # every task no other infer entry claims

    def prepare(self, start: VariantStart, mark: Mark) -> Variant:
        first, loaded = start.first, start.loaded
        steps = [step.name for step in first.technique.steps]
        size = input_size(loaded, first)
        prepared: dict[str, Any] = {}
        for spec in start.runs:
            mark("reference", spec.run_id)
            try:
                run_size = input_size(loaded, spec)
                reference = prepare_reference(loaded, spec, start.cache_dir)
                flops = None if changes_flops(steps) else uncompressed_flops(
                    loaded, spec, run_size, reference.key, start.cache_dir)
                prepared[spec.run_id] = PreparedInfer(reference, flops)
            except Exception as exc:  # this run fails alone, at its turn
                prepared[spec.run_id] = exc
        # for techniques that train
        trainer = CompressionTrainer(loaded, first, start.device, run_marks(mark, first.run_id))
        ctx = TechniqueContext(
            device=start.device, task=loaded.task, loaded=loaded,
            calibration_inputs=lambda: [
                loaded.make_inputs(first.batch_size, size, seed=100 + i) for i in range(4)],
            train=trainer,
        )
        variant = compressed(start, ctx, prepared, mark)
        if trainer.timings is None:
            return variant
        ctx.extra_result["training"]["measured_with_run"] = first.run_id
        return replace(variant, training=trainer.timings)

    def measure(self, variant: Variant, spec, mark: Mark) -> WorkerResult:
        started_t = time.monotonic()
        prepared = prepared_for(variant, spec)
        loaded, module, ctx = variant.loaded, variant.module, variant.ctx
        inputs = cast_inputs(
            loaded.make_inputs(spec.batch_size, input_size(loaded, spec), seed=0),
            ctx.input_dtype)
        measured = measure_windows([Iteration(lambda: module(**inputs))], spec.protocol,
                                   variant.device, run_marks(mark, spec.run_id),
                                   inference_autograd(variant))

        mark("quality", spec.run_id)  # after the windows: quality and flops stay out of them
        quality_result = evaluate(loaded, module, prepared.reference, ctx.input_dtype)
        flops_per_batch = prepared.flops_per_batch
        if flops_per_batch is None:
            flops_per_batch = count_flops(module, inputs)
        return worker_result(
            variant, measured, REPEAT_PHASE, quality_result, spec, started_t,
            reference=prepared.reference, warnings=tuple(prepared.reference.warnings),
            flops_per_inference=None if flops_per_batch is None
            else flops_per_batch / spec.batch_size,
        )


WORKLOAD = InferWorkload()

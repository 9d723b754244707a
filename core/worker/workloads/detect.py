"""The `detect` workload: infer runs of an object-detection model. Each run's images and the
uncompressed model's detections come before compressing (static quantization calibrates on the
first run's images); each timed iteration is pre-processing + detector + post-processing
(detection_pipeline) on one batch of decoded images; then mAP and fidelity-mAP per run."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from energy_console.core.compression import TechniqueContext
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
from energy_console.core.worker.windows import REPEAT_PHASE, Iteration, measure_windows

CALIBRATION_BATCHES = 8  # batches of the dataset's images for static quantization


@dataclass(frozen=True)
class PreparedDetect:
    images: Any  # quality.detection_eval images of the run's dataset
    base: Any  # DetectionPipeline at the run's resolution, uncompressed
    reference: Any  # the uncompressed model's detections
    example: dict[str, Any]  # one pre-processed batch (FLOPs)
    flops_per_batch: float | None  # on the uncompressed model (None: after compression)


class DetectWorkload:
    name = "detect"
    serves = Workload.INFER
    tasks = frozenset({"object-detection"})

    def prepare(self, start: VariantStart, mark: Mark) -> Variant:
        from energy_console.core.quality.detection_eval import (
            detection_images,
            prepare_detection_reference,
        )
        from energy_console.core.worker.workloads.detection_pipeline import DetectionPipeline

        first, loaded = start.first, start.loaded
        steps = [step.name for step in first.technique.steps]
        prepared: dict[str, Any] = {}
        for spec in start.runs:
            mark("reference", spec.run_id)
            try:
                images = detection_images(loaded, spec)
                base = DetectionPipeline.for_model(loaded, spec.resolution, start.device)
                reference = prepare_detection_reference(loaded, spec, images, base,
                                                        start.cache_dir)
                example = {"pixel_values": base.preprocess(images.batches(spec.batch_size, 1)[0])}
                flops = None if changes_flops(steps) else count_flops(loaded.module, example)
                prepared[spec.run_id] = PreparedDetect(images, base, reference, example, flops)
            except Exception as exc:  # this run fails alone, at its turn
                prepared[spec.run_id] = exc
        own = prepared[first.run_id]
        if isinstance(own, BaseException):  # its images calibrate the variant
            raise own
        calibration = [{"pixel_values": own.base.preprocess(batch)}
                       for batch in own.images.batches(first.batch_size, CALIBRATION_BATCHES)]
        ctx = TechniqueContext(device=start.device, task=loaded.task, loaded=loaded,
                               calibration_inputs=lambda: calibration)
        return compressed(start, ctx, prepared, mark)

    def measure(self, variant: Variant, spec, mark: Mark) -> WorkerResult:
        from energy_console.core.quality.detection_eval import evaluate_detection

        started_t = time.monotonic()
        prepared = prepared_for(variant, spec)
        pipeline = prepared.base.with_module(variant.module, variant.ctx.input_dtype)
        batch = prepared.images.batches(spec.batch_size, 1)[0]
        measured = measure_windows([Iteration(lambda: pipeline(batch))], spec.protocol,
                                   variant.device, run_marks(mark, spec.run_id),
                                   inference_autograd(variant))

        mark("quality", spec.run_id)
        quality_result = evaluate_detection(pipeline, prepared.images, prepared.reference,
                                            spec.batch_size)
        flops_per_batch = prepared.flops_per_batch
        if flops_per_batch is None:
            flops_per_batch = count_flops(variant.module,
                                          cast_inputs(prepared.example, variant.ctx.input_dtype))
        return worker_result(
            variant, measured, REPEAT_PHASE, quality_result, spec, started_t,
            reference=prepared.reference, warnings=(),
            flops_per_inference=None if flops_per_batch is None
            else flops_per_batch / spec.batch_size)


WORKLOAD = DetectWorkload()

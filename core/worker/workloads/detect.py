"""Detection runs of one variant: each run's images and the uncompressed model's detections
before compressing (static quantization calibrates on the first run's images), then windows that
each time pre-processing + detector + post-processing (core.detection) on one batch of decoded
images, then mAP and fidelity-mAP per run. The same shape as core.variant's infer path."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from energy_console.core.compression import TechniqueContext
from energy_console.core.store.figures import WorkerResult
from energy_console.core.worker.flops import changes_flops, count_flops
from energy_console.core.worker.variant import (
    Mark,
    Variant,
    cast_inputs,
    compressed,
    prepared_for,
    timed_windows,
    worker_result,
)
from energy_console.core.worker.variant_cache import VariantCache
from energy_console.core.worker.windows import run_protocol

CALIBRATION_BATCHES = 8  # batches of the dataset's images for static quantization


@dataclass(frozen=True)
class PreparedDetect:
    images: Any  # quality.detection_eval images of the run's dataset
    base: Any  # detection.DetectionPipeline at the run's resolution, uncompressed
    reference: Any  # the uncompressed model's detections
    example: dict[str, Any]  # one pre-processed batch (FLOPs)
    flops_per_batch: float | None  # on the uncompressed model (None: after compression)


def prepare_detect(runs, loaded, device: str, load_s: float, cache_dir: Path, mark: Mark,
                   variant_cache: VariantCache | None) -> Variant:
    from energy_console.core.quality.detection_eval import (
        detection_images,
        prepare_detection_reference,
    )
    from energy_console.core.worker.detect_call import DetectionPipeline

    first = runs[0]
    steps = [step.name for step in first.technique.steps]
    prepared: dict[str, Any] = {}
    for spec in runs:
        mark("reference", spec.run_id)
        try:
            images = detection_images(loaded, spec)
            base = DetectionPipeline.for_model(loaded, spec.resolution, device)
            reference = prepare_detection_reference(loaded, spec, images, base, cache_dir)
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
    ctx = TechniqueContext(device=device, task=loaded.task, loaded=loaded,
                           calibration_inputs=lambda: calibration)
    return compressed(runs, loaded, ctx, load_s, prepared, mark, variant_cache, "detect")


def measure_detect(variant: Variant, spec, mark: Mark) -> WorkerResult:
    from energy_console.core.quality.detection_eval import evaluate_detection

    started_t = time.monotonic()
    prepared = prepared_for(variant, spec)
    pipeline = prepared.base.with_module(variant.module, variant.ctx.input_dtype)
    batch = prepared.images.batches(spec.batch_size, 1)[0]
    measured, peak_mem_mb = timed_windows(variant, spec, mark, run_protocol,
                                          lambda: pipeline(batch))

    mark("quality", spec.run_id)
    quality_result = evaluate_detection(pipeline, prepared.images, prepared.reference,
                                        spec.batch_size)
    flops_per_batch = prepared.flops_per_batch
    if flops_per_batch is None:
        flops_per_batch = count_flops(variant.module,
                                      cast_inputs(prepared.example, variant.ctx.input_dtype))
    return worker_result(
        variant, measured, quality_result, spec, started_t, peak_mem_mb=peak_mem_mb,
        reference=prepared.reference, warnings=(),
        flops_per_inference=None if flops_per_batch is None
        else flops_per_batch / spec.batch_size)

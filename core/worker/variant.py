"""One model variant in a worker: loaded and compressed once, then measured at each input size.

`prepare_variant` loads the model, prepares every run's uncompressed reference (before any
technique touches the module) and compresses it, or takes the compressed module from the variant
cache. `measure_run` measures one RunSpec on that variant: its own inputs, warm-up, windows and
quality, so each input size is a run of its own with its own record. Generate and detection
runs prepare and measure through core.variant_generate and core.variant_detect with the same
shape; a train run (a variant of its own, see core.plan) through core.train_worker.

A technique that trains (finetune, qat) trains once, here, in timed windows of its own marked as
the first run's: every run of the variant carries those training figures (core.unit), the
variant's cost measured once. Such a variant is never read from or written to the variant cache:
its training energy is measured each time.
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from energy_console.core.compression import (
    TRAINING_STEPS,
    NotApplicable,
    TechniqueContext,
    apply_technique,
)
from energy_console.core.models import load_model
from energy_console.core.models.size import SizeReport, measure_size
from energy_console.core.quality import evaluate, prepare_reference
from energy_console.core.store.figures import WorkerResult
from energy_console.core.worker.flops import changes_flops, count_flops
from energy_console.core.worker.variant_cache import VariantCache
from energy_console.core.worker.windows import run_protocol

Mark = Callable[..., None]  # mark(phase, run_id, **fields)


@dataclass
class Variant:
    """A loaded, compressed model and what each of its runs prepared beforehand."""

    device: str
    loaded: Any  # LoadedModel
    module: Any  # the compressed module (None for a train run: it compresses itself)
    ctx: TechniqueContext
    load_s: float
    compress_s: float
    size_report: SizeReport | None
    cache_hit: bool  # the compressed module came from the variant cache
    cache_read_s: float  # reading it from there (0 when compressed here)
    # per run id: what measuring it needs from before compression, or the exception preparing it
    # raised (raised again when that run's turn comes, so it fails alone)
    prepared: dict[str, Any] = field(default_factory=dict)
    workload: str = "infer"
    extra: dict[str, Any] = field(default_factory=dict)  # workload-wide state (generate)
    training: Any = None  # TrainingTimings of a technique that trained while compressing
    session_dir: Path | None = None  # where save_models puts models/<run id>/


@dataclass(frozen=True)
class PreparedInfer:
    reference: Any  # quality.Reference
    flops_per_batch: float | None  # counted on the uncompressed model (None: after compression)


def resolve_device(requested: str) -> str:
    if requested == "auto":
        return "cuda:0" if torch.cuda.is_available() else "cpu"
    if requested.startswith("cuda"):
        if not torch.cuda.is_available():
            raise NotApplicable(
                f"device {requested!r} asked for, but torch sees no CUDA device (a CPU build of "
                "torch, or no GPU/driver); use device: cpu, or install a CUDA build of torch"
            )
        index = int(requested.split(":")[1]) if ":" in requested else 0
        if index >= torch.cuda.device_count():
            raise NotApplicable(
                f"{requested}: only {torch.cuda.device_count()} CUDA device(s) visible")
        return f"cuda:{index}"
    return "cpu"


def input_size(loaded, spec) -> int:
    size = spec.seq_len if loaded.family == "text" else spec.resolution
    if size is None:  # task learnt from the config differs from what the plan assumed
        raise NotApplicable(
            f"{spec.model.ref} is a {loaded.task} model but the run was planned with the other "
            "input kind; add `task:` to the model in the profile"
        )
    return size


def prepare_variant(runs, cache_dir: Path, mark: Mark,
                    variant_cache: VariantCache | None = None) -> Variant:
    """Load, prepare each run's reference, compress: everything a variant's runs share."""
    first = runs[0]
    device = resolve_device(first.device)
    if first.protocol.threads:
        torch.set_num_threads(first.protocol.threads)
    mark("loading", first.run_id)
    t0 = time.monotonic()
    loaded = load_model(first.model, device)
    load_s = time.monotonic() - t0
    if first.workload == "train":  # trains from the loaded weights: compresses in measure_run
        ctx = TechniqueContext(device=device, task=loaded.task, loaded=loaded,
                               calibration_inputs=list)
        return Variant(device, loaded, None, ctx, load_s, 0.0, None, False, 0.0,
                       workload="train", session_dir=cache_dir.parent)
    if first.workload == "generate":
        from energy_console.core.worker.workloads.generate import prepare_generate

        variant = prepare_generate(runs, loaded, device, load_s, cache_dir, mark, variant_cache)
    elif loaded.task == "object-detection":
        from energy_console.core.worker.workloads.detect import prepare_detect

        variant = prepare_detect(runs, loaded, device, load_s, cache_dir, mark, variant_cache)
    else:
        variant = prepare_infer(runs, loaded, device, load_s, cache_dir, mark, variant_cache)
    variant.session_dir = cache_dir.parent
    return variant


def prepare_infer(runs, loaded, device: str, load_s: float, cache_dir: Path, mark: Mark,
                  variant_cache: VariantCache | None) -> Variant:
    from energy_console.core.worker.workloads.train import CompressionTrainer

    first = runs[0]
    steps = [step.name for step in first.technique.steps]
    size = input_size(loaded, first)
    prepared: dict[str, Any] = {}
    for spec in runs:
        mark("reference", spec.run_id)
        try:
            run_size = input_size(loaded, spec)
            reference = prepare_reference(loaded, spec, cache_dir)
            flops = None if changes_flops(steps) else uncompressed_flops(
                loaded, spec, run_size, reference.key, cache_dir)
            prepared[spec.run_id] = PreparedInfer(reference, flops)
        except Exception as exc:  # this run fails alone, at its turn
            prepared[spec.run_id] = exc
    trainer = CompressionTrainer(loaded, first, device,  # for techniques that train
                                 lambda phase, **fields: mark(phase, first.run_id, **fields))
    ctx = TechniqueContext(
        device=device, task=loaded.task, loaded=loaded,
        calibration_inputs=lambda: [
            loaded.make_inputs(first.batch_size, size, seed=100 + i) for i in range(4)],
        train=trainer,
    )
    variant = compressed(runs, loaded, ctx, load_s, prepared, mark, variant_cache, "infer")
    if trainer.timings is not None:
        variant.training = trainer.timings
        ctx.extra_result["training"]["measured_with_run"] = first.run_id
    return variant


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


def compressed(runs, loaded, ctx: TechniqueContext, load_s: float, prepared: dict[str, Any],
               mark: Mark, variant_cache: VariantCache | None, workload: str) -> Variant:
    """The variant once its technique is applied (or taken from the cache)."""
    first = runs[0]
    mark("compressing", first.run_id)
    t0 = time.monotonic()
    if any(step.name in TRAINING_STEPS for step in first.technique.steps):
        variant_cache = None  # its training is measured each time
    key = variant_cache.key(loaded, first, ctx) if variant_cache else ""
    cached = variant_cache.load(key, ctx) if variant_cache else None
    if cached is not None:
        module, size = cached
    else:
        module = apply_technique(loaded.module, first.technique, ctx)
    seconds = time.monotonic() - t0  # compressing, or reading the cached variant
    if cached is None:
        size = measure_size(module)
        if variant_cache:
            variant_cache.save(key, module, ctx, size)
    hit = cached is not None
    return Variant(ctx.device, loaded, module, ctx, load_s, 0.0 if hit else seconds, size, hit,
                   seconds if hit else 0.0, prepared, workload)


def measure_run(variant: Variant, spec, mark: Mark) -> WorkerResult:
    """One input size of a prepared variant: its inputs, windows and quality."""
    if variant.workload == "train":
        from energy_console.core.worker.workloads.train import run_train

        return run_train(spec, variant, lambda phase, **fields: mark(phase, spec.run_id,
                                                                     **fields))
    if variant.workload == "generate":
        from energy_console.core.worker.workloads.generate import measure_generate

        return measure_generate(variant, spec, mark)
    if variant.workload == "detect":
        from energy_console.core.worker.workloads.detect import measure_detect

        return measure_detect(variant, spec, mark)
    started_t = time.monotonic()
    prepared = prepared_for(variant, spec)
    loaded, module, ctx = variant.loaded, variant.module, variant.ctx
    inputs = cast_inputs(loaded.make_inputs(spec.batch_size, input_size(loaded, spec), seed=0),
                         ctx.input_dtype)
    measured, peak_mem_mb = timed_windows(variant, spec, mark, run_protocol,
                                          lambda: module(**inputs))

    mark("quality", spec.run_id)  # after the windows: quality and flops stay out of them
    quality_result = evaluate(loaded, module, prepared.reference, ctx.input_dtype)
    flops_per_batch = prepared.flops_per_batch
    if flops_per_batch is None:
        flops_per_batch = count_flops(module, inputs)
    return worker_result(
        variant, measured, quality_result, spec, started_t, peak_mem_mb=peak_mem_mb,
        reference=prepared.reference, warnings=tuple(prepared.reference.warnings),
        flops_per_inference=None if flops_per_batch is None
        else flops_per_batch / spec.batch_size,
    )


def prepared_for(variant: Variant, spec) -> Any:
    """What prepare_variant made for this run; a failure there is raised now, at its turn."""
    prepared = variant.prepared[spec.run_id]
    if isinstance(prepared, BaseException):
        raise prepared
    return prepared


def timed_windows(variant: Variant, spec, mark: Mark, protocol_fn: Callable[..., Any],
                  *args: Any) -> tuple[Any, float]:
    """A workload's timed protocol (`protocol_fn(*args, sync, warmup=…, mark=…)`) on the
    variant's device: synchronised, without autograd, peak memory reset before and read after."""
    device, protocol = variant.device, spec.protocol
    sync = torch.cuda.synchronize if device.startswith("cuda") else no_sync
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats(device)
    grad_mode = torch.no_grad if variant.ctx.needs_no_grad else torch.inference_mode
    with grad_mode():
        measured = protocol_fn(
            *args, sync, warmup=protocol.warmup, repeats=protocol.repeats,
            min_window_s=protocol.min_window_s, iterations=protocol.iterations,
            mark=lambda phase, **fields: mark(phase, spec.run_id, **fields))
    return measured, peak_memory_mb(device)


def worker_result(variant: Variant, measured, quality, spec, started_t: float, *,
                  peak_mem_mb: float, reference, warnings: tuple[str, ...],
                  **workload_figures: Any) -> WorkerResult:
    """What every workload sends back for one run; `warnings` are the workload's own,
    `workload_figures` its extra WorkerResult fields (flops, generation timings). A variant that
    trained gives every run its training timings; save_models keeps the run's model."""
    from energy_console.core.worker.workloads.train import saved_model

    ctx, loaded, size_report = variant.ctx, variant.loaded, variant.size_report
    assert size_report is not None, "the variant is compressed"
    if variant.training is not None:
        workload_figures.setdefault("training", variant.training)
    if variant.session_dir is not None:
        workload_figures.update(saved_model(variant.module, loaded, spec, variant.session_dir))
    return WorkerResult(
        device=variant.device,
        task=loaded.task,
        iterations=tuple(measured.iterations),
        latencies_ms=tuple(tuple(r) for r in measured.latencies_ms),
        first_warmup_t=measured.first_warmup_t,
        load_s=variant.load_s,
        compress_s=variant.compress_s,
        size_bytes=size_report.size_bytes,
        params=size_report.params,
        nonzero_params=size_report.nonzero_params,
        dtype_bytes=dict(size_report.dtype_bytes),
        peak_mem_mb=peak_mem_mb,
        quality=quality,
        warnings=tuple(ctx.warnings) + tuple(loaded.notes) + warnings + tuple(quality.warnings),
        reference_seconds=reference.seconds,
        reference_cache_hit=reference.cache_hit,
        technique_details=dict(ctx.extra_result),
        torch_threads=torch.get_num_threads(),
        run_started_t=started_t,
        variant_cache_hit=variant.cache_hit,
        variant_cache_read_s=variant.cache_read_s,
        runtime=ctx.runtime,
        **workload_figures,
    )


def cast_inputs(inputs: dict, dtype) -> dict:
    if dtype is None:
        return inputs
    return {
        k: v.to(dtype) if isinstance(v, torch.Tensor) and v.is_floating_point() else v
        for k, v in inputs.items()
    }


def no_sync() -> None:
    pass


def peak_memory_mb(device: str) -> float:
    """CUDA: the peak since this run's reset; CPU: the worker's peak RSS so far (its sizes run
    smallest first, so mostly this run's)."""
    if device.startswith("cuda"):
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB

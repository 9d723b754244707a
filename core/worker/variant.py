"""One model variant in a worker: what every workload shares.

`load_variant` loads the variant's model on its device; the workload (core.worker.workloads)
then prepares every run's uncompressed reference (before any technique touches the module) and
compresses it through `compressed`, or takes the compressed module from the variant cache. Each
run (one input size) is then measured on that variant: its own inputs, warm-up, windows and
quality, so each input size is a run of its own with its own record (`worker_result`).

A technique that trains (finetune, qat) trains once, while compressing, in timed windows of its
own marked as the first run's: every run of the variant carries those training figures
(core.session.unit), the variant's cost measured once. Such a variant is never read from or
written to the variant cache: its training energy is measured each time.

torch is imported in the functions that use it (as in core.worker.windows and .entry): a worker
has it already (core.worker.preload), and a process that only reads the workload registry, the
worker's messages or its windows (the fast tests) goes without its seconds of import.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from energy_console.core.compression import (
    TRAINING_STEPS,
    NotApplicable,
    TechniqueContext,
    apply_technique,
)
from energy_console.core.models import load_model, source_for
from energy_console.core.models.size import SizeReport, measure_size
from energy_console.core.store.figures import TrainingTimings, WorkerResult
from energy_console.core.worker.variant_cache import VariantCache
from energy_console.core.worker.variant_weights import module_structure
from energy_console.core.worker.windows import Autograd, MeasuredWindows, RunMark

Mark = Callable[..., Any]  # mark(phase, run_id, **fields)
MODELS_FOLDER = "models"  # in the session directory: models/<run id>/


@dataclass(frozen=True)
class VariantStart:
    """What every workload prepares a variant from: its runs and its model, loaded."""

    runs: tuple[Any, ...]  # RunSpec, input sizes smallest first
    loaded: Any  # LoadedModel, on `device`
    device: str
    load_s: float
    cache_dir: Path  # the session's cache: references, FLOP counts
    variant_cache: VariantCache | None

    @property
    def first(self) -> Any:
        return self.runs[0]

    @property
    def session_dir(self) -> Path:  # where save_models puts models/<run id>/
        return self.cache_dir.parent


@dataclass(frozen=True)
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
    session_dir: Path
    # per run id: what measuring it needs from before compression, or the exception preparing it
    # raised (raised again when that run's turn comes, so it fails alone)
    prepared: dict[str, Any] = field(default_factory=dict)
    training: TrainingTimings | None = None  # of a technique that trained while compressing


def resolve_device(requested: str) -> str:
    import torch

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


def load_variant(runs, cache_dir: Path, mark: Mark,
                 variant_cache: VariantCache | None = None) -> VariantStart:
    """The variant's model on its device, and the torch threads the protocol asks for."""
    import torch

    first = runs[0]
    device = resolve_device(first.device)
    if first.protocol.threads:
        torch.set_num_threads(first.protocol.threads)
    mark("loading", first.run_id, detail=source_for(first.model.source).loading_from(first.model))
    t0 = time.monotonic()
    loaded = load_model(first.model, device)
    return VariantStart(tuple(runs), loaded, device, time.monotonic() - t0, cache_dir,
                        variant_cache)


def run_marks(mark: Mark, run_id: str) -> RunMark:
    """One run's marks: mark(phase, **fields)."""
    return lambda phase, **fields: mark(phase, run_id, **fields)


def compressed(start: VariantStart, ctx: TechniqueContext, prepared: dict[str, Any],
               mark: Mark) -> Variant:
    """The variant once its technique is applied (or taken from the cache)."""
    first, loaded = start.first, start.loaded
    mark("compressing", first.run_id)
    ctx.runtime = loaded.runtime  # a technique that changes runtime says so while it applies
    t0 = time.monotonic()
    variant_cache = start.variant_cache
    if any(step.name in TRAINING_STEPS for step in first.technique.steps):
        variant_cache = None  # its training is measured each time
    key = variant_cache.key(loaded, first, ctx) if variant_cache else ""
    # taken before a technique changes the module in place: a variant of this structure is
    # cached as weights alone
    base = module_structure(loaded.module) if variant_cache else None
    cached = variant_cache.load(key, ctx, loaded.module) if variant_cache else None
    if cached is not None:
        module, size = cached
    else:
        module = apply_technique(loaded.module, first.technique, ctx)
    seconds = time.monotonic() - t0  # compressing, or reading the cached variant
    if not first.technique.is_baseline:  # the uncompressed model's own failure stays one
        probe(module, ctx, first.technique.slug)
    if cached is None:
        size = measure_size(module)
        if variant_cache:
            variant_cache.save(key, module, ctx, size, base)
    hit = cached is not None
    return Variant(ctx.device, loaded, module, ctx, start.load_s, 0.0 if hit else seconds, size,
                   hit, seconds if hit else 0.0, start.session_dir, prepared)


def probe(module, ctx: TechniqueContext, technique: str) -> None:
    """Run the compressed module once on the example input, before any window: a technique that
    breaks the model (a layer whose shapes no longer fit) makes the variant's runs skipped with
    the reason, never a failure in the middle of its windows."""
    import torch

    examples = ctx.calibration_inputs()
    if not examples or not isinstance(examples[0], dict):
        return
    inputs = cast_inputs(dict(examples[0]), ctx.input_dtype)
    try:
        with torch.no_grad() if ctx.needs_no_grad else torch.inference_mode():
            module(**inputs)
    except torch.OutOfMemoryError:
        raise  # the device, not the technique
    except RuntimeError as exc:
        first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise NotApplicable(
            f"{technique}: the compressed model no longer runs on the example input "
            f"({first_line[:200]}): this technique does not apply to this model's "
            "architecture") from exc


def prepared_for(variant: Variant, spec) -> Any:
    """What the workload prepared for this run; a failure there is raised now, at its turn."""
    prepared = variant.prepared[spec.run_id]
    if isinstance(prepared, BaseException):
        raise prepared
    return prepared


def inference_autograd(variant: Variant) -> Autograd:
    """Inference mode, or no_grad where the technique's kernels fail under inference_mode."""
    return Autograd.NO_GRAD if variant.ctx.needs_no_grad else Autograd.INFERENCE_MODE


def worker_result(variant: Variant, measured: MeasuredWindows, phase: str, quality, spec,
                  started_t: float, *, reference, warnings: tuple[str, ...],
                  **workload_figures: Any) -> WorkerResult:
    """What every workload sends back for one run; its iterations and latencies are those of the
    windows marked `phase`, `warnings` are the workload's own, `workload_figures` its extra
    WorkerResult fields (flops, generation timings). A variant that trained gives every run its
    training timings; save_models keeps the run's model."""
    import torch

    ctx, loaded, size_report = variant.ctx, variant.loaded, variant.size_report
    assert size_report is not None, "the variant is compressed"
    if variant.training is not None:
        workload_figures.setdefault("training", variant.training)
    workload_figures.update(saved_model(variant.module, loaded, spec, variant.session_dir))
    windows = measured.of(phase)
    return WorkerResult(
        device=variant.device,
        task=loaded.task,
        iterations=tuple(w.iterations for w in windows),
        latencies_ms=tuple(w.latencies_ms for w in windows),
        first_warmup_t=measured.first_warmup_t,
        load_s=variant.load_s,
        compress_s=variant.compress_s,
        size_bytes=size_report.size_bytes,
        params=size_report.params,
        nonzero_params=size_report.nonzero_params,
        dtype_bytes=dict(size_report.dtype_bytes),
        peak_mem_mb=measured.peak_mem_mb,
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
    import torch

    return {
        k: v.to(dtype) if isinstance(v, torch.Tensor) and v.is_floating_point() else v
        for k, v in inputs.items()
    }


def saved_model(module, loaded, spec, session_dir: Path) -> dict[str, Any]:
    """With save_models: the module in models/<run id>/ (save_pretrained, with the tokenizer
    where there is one, so a later profile's `path:` loads it; an ONNX graph as model.onnx, for
    `onnx:`; else the torch state dict in model.pt), as WorkerResult fields."""
    if not getattr(spec, "save_model", False):
        return {}
    from energy_console.core.models.onnx_session import OnnxGraphModule

    folder = session_dir / MODELS_FOLDER / spec.run_id
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    if isinstance(module, OnnxGraphModule):  # a later profile's `onnx:` loads it
        (folder / "model.onnx").write_bytes(module.graph)
        return {"saved_model": f"{MODELS_FOLDER}/{spec.run_id}",
                "saved_model_bytes": len(module.graph)}
    try:
        module.save_pretrained(folder)
        _save_tokenizer(loaded, spec, folder)
    except Exception:  # noqa: BLE001 - quantized and replaced modules: their state dict
        import torch

        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        torch.save(module.state_dict(), folder / "model.pt")
    size = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
    return {"saved_model": f"{MODELS_FOLDER}/{spec.run_id}", "saved_model_bytes": size}


def _save_tokenizer(loaded, spec, folder: Path) -> None:
    if loaded.family != "text":
        if loaded.image_processor is not None:
            loaded.image_processor.save_pretrained(folder)
        return
    from energy_console.core.quality.eval_set import text_tokenizer

    text_tokenizer(loaded, spec.model).save_pretrained(folder)

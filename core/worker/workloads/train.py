"""Training inside the worker: the `train` workload, the fine-tune a technique asks for, and
keeping a run's model (`save_models: true`).

core.variant measures a train run with `run_train` (each train run a variant of its own: training
changes the weights) and hands `CompressionTrainer` to the techniques as TechniqueContext.train;
the loop itself is core.train's.
"""

from __future__ import annotations

import dataclasses
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from energy_console.core.compression import (
    TRAINING_STEPS,
    NotApplicable,
    TechniqueContext,
    apply_technique,
)
from energy_console.core.models.size import measure_size
from energy_console.core.quality.result import QualityResult
from energy_console.core.spec.workloads import TrainingSettings
from energy_console.core.store.figures import TrainingTimings, WorkerResult
from energy_console.core.worker.train_loop import (
    Trainer,
    evaluate_held_out,
    perplexity,
    run_train_protocol,
    train_in_windows,
    training_data,
)

MODELS_FOLDER = "models"  # in the session directory: models/<run id>/


@dataclass(frozen=True)
class _NoReference:
    """Train runs compare with no uncompressed outputs: their quality is held-out accuracy."""

    seconds: float = 0.0
    cache_hit: bool = False


def _sync_for(device: str):
    import torch

    return torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)


def run_train(spec, variant, mark) -> WorkerResult:
    """A train run of a loaded model (core.variant.Variant): labelled batches, the technique
    (e.g. a pruning to fine-tune after), then warm-up steps and timed windows of optimizer steps,
    then held-out loss and accuracy. `mark(phase, **fields)` is the run's."""
    import torch
    from energy_console.core.worker.variant import peak_memory_mb, worker_result

    started_t = time.monotonic()
    loaded, device = variant.loaded, variant.device

    if any(step.name in TRAINING_STEPS for step in spec.technique.steps):
        raise NotApplicable(f"{spec.technique.slug} trains already; a train run fine-tunes the "
                            "model itself: use baseline or a compression without training")
    settings = spec.model.training or TrainingSettings()
    data = training_data(loaded, spec, settings, device)
    mark("compressing")
    t0 = time.monotonic()
    ctx = TechniqueContext(device=device, task=loaded.task, loaded=loaded,
                           calibration_inputs=lambda: [b.inputs for b in data.train[:4]])
    module = apply_technique(loaded.module, spec.technique, ctx)
    compress_s = time.monotonic() - t0
    sync = _sync_for(device)
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats(device)
    trainer = Trainer(module, data, settings, device, sync)
    protocol = spec.protocol
    measured = run_train_protocol(trainer, warmup=protocol.warmup, repeats=protocol.repeats,
                                  min_window_s=protocol.min_window_s,
                                  iterations=protocol.iterations, mark=mark)
    peak_mem_mb = peak_memory_mb(device)
    mark("quality")
    t0 = time.monotonic()
    held = evaluate_held_out(module, data)
    quality = _held_out_quality(loaded.task, held, data.dataset, time.monotonic() - t0)
    module.eval()
    trained = dataclasses.replace(variant, module=module, ctx=ctx, compress_s=compress_s,
                                  size_report=measure_size(module))
    return worker_result(trained, measured, quality, spec, started_t, peak_mem_mb=peak_mem_mb,
                         reference=_NoReference(), warnings=tuple(data.warnings),
                         training=measured.timings)


def _held_out_quality(task: str, held, dataset: str, seconds: float) -> QualityResult:
    if task == "causal-lm":
        return QualityResult(task=task, metric="perplexity", value=perplexity(held.loss),
                             samples=held.samples, seconds=seconds, dataset=dataset,
                             perplexity=perplexity(held.loss), next_token_agreement=None)
    return QualityResult(task=task, metric="accuracy", value=held.accuracy, samples=held.samples,
                         seconds=seconds, dataset=dataset, accuracy=held.accuracy)


class CompressionTrainer:
    """TechniqueContext.train of infer runs: the fine-tune a technique asks for, in timed
    windows of optimizer steps (split over the protocol's repeats), its timings kept."""

    def __init__(self, loaded, spec, device: str, mark):
        self.loaded, self.spec, self.device, self.mark = loaded, spec, device, mark
        self.timings: TrainingTimings | None = None

    def __call__(self, module, ctx: TechniqueContext, steps: int, keep_zeros: bool = False):
        if self.timings is not None:
            raise NotApplicable("a chain may train once (one finetune or qat step)")
        settings = self.spec.model.training or TrainingSettings()
        try:
            data = training_data(self.loaded, self.spec, settings, self.device)
        except Exception as exc:  # no dataset: the run cannot train, so it is skipped
            raise NotApplicable(f"training needs labelled data: {exc}") from None
        if settings.dataset is None:
            ctx.warnings.append(
                "trained on the model's own dataset (its held-out quarter apart): the run's "
                "quality covers the whole dataset, trained samples included; add `training: "
                "{dataset: ...}` to train on a set apart")
        ctx.warnings.extend(data.warnings)
        trainer = Trainer(module, data, settings, self.device, _sync_for(self.device),
                          keep_zeros=keep_zeros)
        self.timings = train_in_windows(trainer, steps, self.spec.protocol.repeats, self.mark)
        ctx.extra_result["training"] = {
            "steps": steps, "optimizer": settings.optimizer, "lr": settings.lr,
            "amp": str(trainer.amp_dtype) if trainer.amp_dtype else None,
            "held_out_loss_before": self.timings.loss_start,
            "held_out_loss_after": self.timings.loss_end,
        }
        module.eval()
        return module


def saved_model(module, loaded, spec, session_dir: Path) -> dict[str, Any]:
    """With save_models: the module in models/<run id>/ (save_pretrained, with the tokenizer
    where there is one, so a later profile's `path:` loads it; else the torch state dict in
    model.pt), as WorkerResult fields."""
    if not getattr(spec, "save_model", False):
        return {}
    import torch

    folder = session_dir / MODELS_FOLDER / spec.run_id
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    try:
        module.save_pretrained(folder)
        _save_tokenizer(loaded, spec, folder)
    except Exception:  # noqa: BLE001 - quantized and replaced modules: their state dict
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

"""The `train` workload: optimizer steps of fine-tuning, timed in windows of steps.

Each train run is a variant of its own (training changes the weights): `prepare` only keeps the
loaded model, and `measure` applies the run's technique (e.g. a pruning to fine-tune after), takes
the held-out loss, times warm-up steps and windows of optimizer steps, then scores the held-out
batches. The training itself is core.worker.workloads.training's.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

from energy_console.core.compression import (
    TRAINING_STEPS,
    NotApplicable,
    TechniqueContext,
    apply_technique,
)
from energy_console.core.models.size import measure_size
from energy_console.core.quality.result import QualityResult
from energy_console.core.spec.workloads import TrainingSettings, Workload
from energy_console.core.store.figures import TrainingTimings, WorkerResult
from energy_console.core.worker.variant import Mark, Variant, VariantStart, run_marks, worker_result
from energy_console.core.worker.windows import Autograd, measure_windows
from energy_console.core.worker.workloads.training import (
    TRAIN_PHASE,
    StepWindows,
    Trainer,
    evaluate_held_out,
    perplexity,
    training_data,
)


@dataclass(frozen=True)
class _NoReference:
    """Train runs compare with no uncompressed outputs: their quality is held-out accuracy."""

    seconds: float = 0.0
    cache_hit: bool = False


class TrainWorkload:
    name = "train"
    serves = Workload.TRAIN
    tasks: frozenset[str] = frozenset()

    def prepare(self, start: VariantStart, mark: Mark) -> Variant:
        """The loaded model as it is: each run compresses and trains its own copy."""
        loaded = start.loaded
        if loaded.runtime != "torch":
            raise NotApplicable(f"{start.first.model.ref} runs in {loaded.runtime}: train runs "
                                "fine-tune torch models; remove `workload: train`")
        ctx = TechniqueContext(device=start.device, task=loaded.task, loaded=loaded,
                               calibration_inputs=list)
        return Variant(start.device, loaded, None, ctx, start.load_s, 0.0, None, False, 0.0,
                       start.session_dir)

    def measure(self, variant: Variant, spec, mark: Mark) -> WorkerResult:
        started_t = time.monotonic()
        loaded, device, run_mark = variant.loaded, variant.device, run_marks(mark, spec.run_id)
        if any(step.name in TRAINING_STEPS for step in spec.technique.steps):
            raise NotApplicable(f"{spec.technique.slug} trains already; a train run fine-tunes "
                                "the model itself: use baseline or a compression without "
                                "training")
        settings = spec.model.training or TrainingSettings()
        data = training_data(loaded, spec, settings, device)
        run_mark("compressing")
        t0 = time.monotonic()
        ctx = TechniqueContext(device=device, task=loaded.task, loaded=loaded,
                               calibration_inputs=lambda: [b.inputs for b in data.train[:4]])
        module = apply_technique(loaded.module, spec.technique, ctx)
        compress_s = time.monotonic() - t0
        trainer = Trainer(module, data, settings, device)
        start_loss = evaluate_held_out(module, data).loss
        protocol = spec.protocol
        steps = StepWindows(trainer, run_mark,
                            lambda planned: max(1, protocol.warmup) + planned * protocol.repeats)
        measured = measure_windows([steps.iteration], protocol, device, run_mark, Autograd.ON)

        run_mark("quality")
        t0 = time.monotonic()
        held = evaluate_held_out(module, data)
        quality = _held_out_quality(loaded.task, held, data.dataset, time.monotonic() - t0)
        module.eval()
        timings = TrainingTimings(
            windows=protocol.repeats,
            steps=tuple(w.iterations for w in measured.of(TRAIN_PHASE)),
            samples=tuple(steps.samples), total_steps=len(trainer.losses),
            loss_start=start_loss, loss_end=held.loss, losses=tuple(trainer.losses))
        trained = replace(variant, module=module, ctx=ctx, compress_s=compress_s,
                          size_report=measure_size(module))
        return worker_result(trained, measured, TRAIN_PHASE, quality, spec, started_t,
                             reference=_NoReference(), warnings=tuple(data.warnings),
                             training=timings)


def _held_out_quality(task: str, held, dataset: str, seconds: float) -> QualityResult:
    if task == "causal-lm":
        return QualityResult(task=task, metric="perplexity", value=perplexity(held.loss),
                             samples=held.samples, seconds=seconds, dataset=dataset,
                             perplexity=perplexity(held.loss), next_token_agreement=None)
    return QualityResult(task=task, metric="accuracy", value=held.accuracy, samples=held.samples,
                         seconds=seconds, dataset=dataset, accuracy=held.accuracy)


WORKLOAD = TrainWorkload()

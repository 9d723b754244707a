"""Training, worker side: labelled batches, optimizer steps, held-out loss; the fine-tune a
technique asks for.

Used by the `train` workload (core.worker.workloads.train) and by the techniques that train
(`finetune`, `qat`) through TechniqueContext.train (CompressionTrainer). A timed window is a
number of optimizer steps (core.worker.windows), marked with start/end edges the runner measures
like any other window, so energy per step has a Student-t interval over the windows. Between
windows nothing else runs: the held-out evaluation comes before the first window and after the
last.

The data: the model entry's `training.dataset`, or its `dataset` split by batches (every
1/holdout-th batch held out and never trained on). Loss is cross-entropy on the model's logits
(next-token for causal LMs), so wrapped or compressed modules train the same way.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from energy_console.core.compression import NotApplicable, TechniqueContext
from energy_console.core.quality.datasets import DatasetError
from energy_console.core.spec.workloads import TrainingSettings
from energy_console.core.store.figures import TrainingTimings
from energy_console.core.worker.windows import Iteration, RunMark, device_sync, timed_window

PROGRESS_EVERY_S = 0.5  # a progress mark (step, loss) at most this often: the live view's pace
IGNORE_INDEX = -100
TRAIN_PHASE = "train"  # the phase of a window of optimizer steps


@dataclass
class TrainBatch:
    inputs: dict[str, Any]  # model kwargs, on the device
    labels: Any  # class ids (classifiers) or token ids with IGNORE_INDEX at padding (LMs)
    samples: int  # real rows (the last batch is filled up with the first samples)


@dataclass
class TrainData:
    train: list[TrainBatch]
    held_out: list[TrainBatch]
    task: str
    dataset: str
    warnings: list[str] = field(default_factory=list)


def training_data(loaded, spec, settings: TrainingSettings, device: str) -> TrainData:
    """The run's training and held-out batches, at its batch size and input size."""
    from energy_console.core.quality.eval_set import build_eval_set

    if not spec.model.dataset and settings.dataset is None:
        raise DatasetError(f"{spec.model.ref}: training needs labelled data; add `dataset:` "
                           "to the model entry (or `training: {dataset: ...}`)")
    own = _batches(build_eval_set(loaded, spec), loaded.task, device) if spec.model.dataset \
        else []
    if settings.dataset is not None:
        apart = dataclasses.replace(spec, model=dataclasses.replace(spec.model,
                                                                    dataset=settings.dataset))
        eval_set = build_eval_set(loaded, apart)
        train = _batches(eval_set, loaded.task, device)
        held_out = own
        name = str(eval_set.dataset)
    else:
        every = max(2, round(1 / settings.holdout))
        held_out = [b for i, b in enumerate(own) if i % every == every - 1]
        train = [b for i, b in enumerate(own) if i % every != every - 1]
        name = str(spec.model.dataset.get("path") if isinstance(spec.model.dataset, dict)
                   else spec.model.dataset)
    if not train or not held_out:
        raise DatasetError(f"{name}: too few samples to train on and hold some out at batch size "
                           f"{spec.batch_size}; use a larger dataset, a smaller batch size, or "
                           "`training: {dataset: ...}` to train on a set apart")
    return TrainData(train, held_out, loaded.task, name)


def _batches(eval_set, task: str, device: str) -> list[TrainBatch]:
    import torch

    out, start = [], 0
    count = eval_set.samples
    for batch, valid in zip(eval_set.batches, eval_set.valid_counts, strict=True):
        inputs = {k: v.to(device) if hasattr(v, "to") else v for k, v in batch.items()}
        if task == "causal-lm":
            labels = inputs["input_ids"].clone()
            if "attention_mask" in inputs:
                labels[inputs["attention_mask"] == 0] = IGNORE_INDEX
        else:
            if eval_set.labels is None:
                raise DatasetError("training a classifier needs labels in its dataset")
            size = len(next(v for v in batch.values() if hasattr(v, "shape")))
            rows = [start + j for j in range(valid)] + [j % count for j in range(size - valid)]
            labels = eval_set.labels[torch.tensor(rows)].to(device)
        out.append(TrainBatch(inputs, labels, valid))
        start += valid
    return out


def batch_loss(module, batch: TrainBatch, task: str):
    """Mean cross-entropy of the module's logits on the batch (next token for causal LMs)."""
    import torch
    from energy_console.core.quality.reference import main_output

    logits = main_output(module(**batch.inputs)).float()
    if task == "causal-lm":
        return torch.nn.functional.cross_entropy(
            logits[:, :-1].reshape(-1, logits.shape[-1]), batch.labels[:, 1:].reshape(-1),
            ignore_index=IGNORE_INDEX)
    return torch.nn.functional.cross_entropy(logits, batch.labels)


@dataclass(frozen=True)
class HeldOut:
    loss: float
    accuracy: float  # class accuracy, or next-token accuracy for causal LMs
    samples: int


def evaluate_held_out(module, data: TrainData) -> HeldOut:
    """Loss and accuracy on the held-out batches (real rows only), the module left as it was."""
    import torch
    from energy_console.core.quality.reference import main_output

    was_training = module.training
    module.eval()
    loss_sum = correct = counted = 0.0
    samples = 0
    with torch.no_grad():
        for batch in data.held_out:
            real = TrainBatch({k: v[:batch.samples] if hasattr(v, "shape") else v
                               for k, v in batch.inputs.items()}, batch.labels[:batch.samples],
                              batch.samples)
            logits = main_output(module(**real.inputs)).float()
            if data.task == "causal-lm":
                logits, target = logits[:, :-1], real.labels[:, 1:]
            else:
                target = real.labels
            mask = target != IGNORE_INDEX
            losses = torch.nn.functional.cross_entropy(
                logits.reshape(-1, logits.shape[-1]), target.reshape(-1),
                ignore_index=IGNORE_INDEX, reduction="sum")
            loss_sum += float(losses)
            correct += float(((logits.argmax(-1) == target) & mask).sum())
            counted += float(mask.sum())
            samples += batch.samples
    module.train(was_training)
    return HeldOut(loss_sum / max(1.0, counted), correct / max(1.0, counted), samples)


class Trainer:
    """Optimizer steps over the training batches, cycling; AMP on CUDA when asked."""

    def __init__(self, module, data: TrainData, settings: TrainingSettings, device: str,
                 keep_zeros: bool = False):
        import torch

        self.module, self.data = module, data
        torch.manual_seed(settings.seed)
        params = [p for p in module.parameters() if p.requires_grad and p.is_floating_point()]
        if not params:
            raise NotApplicable("the model has no trainable floating-point parameters (a "
                                "quantized module cannot be trained); train before quantizing")
        self.optimizer = _optimizer(params, settings)
        self.amp_dtype = _amp_dtype(device, settings.amp)
        self.scaler = (torch.amp.GradScaler("cuda") if self.amp_dtype == torch.float16
                       else None)
        self.device_type = device.split(":")[0]
        # pruned weights stay pruned: zeros kept at zero after every step
        self.masks = [(p, p != 0) for p in params if keep_zeros and p.dim() > 1
                      and bool((p == 0).any())]
        self.cursor = 0
        self.losses: list[float] = []

    def step(self) -> tuple[float, int]:
        """One optimizer step on the next batch: (its loss, its samples)."""
        import torch

        batch = self.data.train[self.cursor % len(self.data.train)]
        self.cursor += 1
        self.module.train()
        self.optimizer.zero_grad(set_to_none=True)
        with torch.autocast(self.device_type, dtype=self.amp_dtype or torch.float32,
                            enabled=self.amp_dtype is not None):
            loss = batch_loss(self.module, batch, self.data.task)
        if not loss.requires_grad:
            raise NotApplicable("the model's output does not depend on any trainable parameter "
                                "(its layers are quantized); train before quantizing")
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            loss.backward()
            self.optimizer.step()
        if self.masks:
            with torch.no_grad():
                for param, mask in self.masks:
                    param.mul_(mask)
        value = float(loss.detach())  # waits for the device: the step is done
        self.losses.append(value)
        return value, len(batch.labels)


def _optimizer(params, settings: TrainingSettings):
    import torch

    if settings.optimizer == "sgd":
        return torch.optim.SGD(params, lr=settings.lr, momentum=0.9,
                               weight_decay=settings.weight_decay)
    kind = torch.optim.AdamW if settings.optimizer == "adamw" else torch.optim.Adam
    return kind(params, lr=settings.lr, weight_decay=settings.weight_decay)


def _amp_dtype(device: str, enabled: bool):
    import torch

    if not enabled or not device.startswith("cuda"):
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


class StepWindows:
    """Optimizer steps as the iteration of timed windows (phase `train`): the samples each
    window trained on, and a progress mark (step, loss) at most every PROGRESS_EVERY_S."""

    def __init__(self, trainer: Trainer, mark: RunMark, total_steps: Callable[[int], int]):
        self.trainer, self.mark = trainer, mark
        self.total_steps = total_steps  # of the planned steps of a window
        self.samples: list[int] = []  # per window
        self.iteration = Iteration(trainer.step, TRAIN_PHASE, self._counted, self._window_starts)
        self._steps: int | None = None
        self._last_progress = 0.0

    def _window_starts(self, planned: int) -> None:
        self.samples.append(0)
        self._steps = self.total_steps(planned)

    def _counted(self, result: tuple[float, int], t0: float, t1: float) -> None:
        loss, rows = result
        self.samples[-1] += rows
        if t1 - self._last_progress >= PROGRESS_EVERY_S:
            self._last_progress = t1
            self.mark("train-step", step=len(self.trainer.losses), steps=self._steps,
                      loss=round(loss, 5))


def train_in_windows(trainer: Trainer, steps: int, windows: int, device: str,
                     mark: RunMark) -> TrainingTimings:
    """A technique's fine-tune: `steps` optimizer steps split over `windows` timed windows (at
    least two where the steps allow, so energy per step has an interval)."""
    count = max(1, min(windows, steps))
    split = [steps // count + (1 if i < steps % count else 0) for i in range(count)]
    start_loss = evaluate_held_out(trainer.module, trainer.data).loss
    step_windows = StepWindows(trainer, mark, lambda planned: steps)
    sync = device_sync(device)
    timed = [timed_window(step_windows.iteration, n, sync, mark, repeat=repeat, repeats=count,
                          min_window_s=0.0) for repeat, n in enumerate(split, 1)]
    end_loss = evaluate_held_out(trainer.module, trainer.data).loss
    return TrainingTimings(
        windows=count, steps=tuple(w.iterations for w in timed),
        samples=tuple(step_windows.samples), total_steps=steps, loss_start=start_loss,
        loss_end=end_loss, losses=tuple(trainer.losses), in_compression=True)


class CompressionTrainer:
    """TechniqueContext.train of infer runs: the fine-tune a technique asks for, in timed
    windows of optimizer steps (split over the protocol's repeats), its timings kept."""

    def __init__(self, loaded, spec, device: str, mark: RunMark):
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
        trainer = Trainer(module, data, settings, self.device, keep_zeros=keep_zeros)
        self.timings = train_in_windows(trainer, steps, self.spec.protocol.repeats,
                                        self.device, self.mark)
        ctx.extra_result["training"] = {
            "steps": steps, "optimizer": settings.optimizer, "lr": settings.lr,
            "amp": str(trainer.amp_dtype) if trainer.amp_dtype else None,
            "held_out_loss_before": self.timings.loss_start,
            "held_out_loss_after": self.timings.loss_end,
        }
        module.eval()
        return module


def perplexity(loss: float) -> float:
    return math.exp(min(loss, 700.0))

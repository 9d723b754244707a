"""Training, worker side: labelled batches, optimizer steps, timed windows of steps, held-out loss.

Used by the `train` workload (core.train_worker.run_train) and by the techniques that train
(`finetune`, `qat`) through TechniqueContext.train. A timed window is a number of optimizer steps,
marked with start/end edges the runner measures like any other window, so energy per step has a
Student-t interval over the windows. Between windows nothing else runs: the held-out evaluation
comes before the first window and after the last.

The data: the model entry's `training.dataset`, or its `dataset` split by batches (every
1/holdout-th batch held out and never trained on). Loss is cross-entropy on the model's logits
(next-token for causal LMs), so wrapped or compressed modules train the same way.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from energy_console.core.quality.datasets import DatasetError
from energy_console.core.spec.workloads import TrainingSettings
from energy_console.core.store.figures import TrainingTimings
from energy_console.core.worker.windows import calibrate_iterations

PROGRESS_EVERY_S = 0.5  # a progress mark (step, loss) at most this often: the live view's pace
IGNORE_INDEX = -100


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
                 sync: Callable[[], None], keep_zeros: bool = False):
        import torch

        self.module, self.data, self.sync = module, data, sync
        torch.manual_seed(settings.seed)
        params = [p for p in module.parameters() if p.requires_grad and p.is_floating_point()]
        if not params:
            from energy_console.core.models.base import NotApplicable

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
            from energy_console.core.models.base import NotApplicable

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


@dataclass
class TrainMeasured:
    iterations: list[int]  # optimizer steps per window
    latencies_ms: list[list[float]]  # per window, per step
    first_warmup_t: float | None
    timings: TrainingTimings


def timed_steps(trainer: Trainer, windows: list[int], mark: Callable[..., None], *,
                min_window_s: float = 0.0, total_steps: int | None = None
                ) -> tuple[list[list[float]], list[int]]:
    """Windows of optimizer steps, each marked (phase `train`): at least its steps, and on until
    it lasts min_window_s; progress marks carry the step and its loss."""
    latencies: list[list[float]] = []
    samples: list[int] = []
    last_progress = 0.0
    done = len(trainer.losses)
    for repeat, n in enumerate(windows, 1):
        trainer.sync()
        start = time.monotonic()
        mark("train", repeat=repeat, repeats=len(windows), iterations=n, edge="start", t=start)
        steps: list[float] = []
        fed = 0
        t1 = start
        while len(steps) < n or t1 - start < min_window_s:
            t0 = time.monotonic()
            loss, rows = trainer.step()
            trainer.sync()
            t1 = time.monotonic()
            steps.append((t1 - t0) * 1000.0)
            fed += rows
            done += 1
            if t1 - last_progress >= PROGRESS_EVERY_S:
                last_progress = t1
                mark("train-step", step=done, steps=total_steps, loss=round(loss, 5))
        mark("train", repeat=repeat, repeats=len(windows), iterations=len(steps), edge="end",
             t=t1)
        latencies.append(steps)
        samples.append(fed)
    return latencies, samples


def run_train_protocol(trainer: Trainer, *, warmup: int, repeats: int, min_window_s: float,
                       iterations: int | None, mark: Callable[..., None]) -> TrainMeasured:
    """The train workload: held-out loss, warm-up steps, `repeats` timed windows of steps (as
    many as the protocol's iterations, or enough to last min_window_s), held-out loss again."""
    start_loss = evaluate_held_out(trainer.module, trainer.data).loss
    mark("warmup")
    first_warmup_t = time.monotonic()
    warmup_s = []
    for _ in range(max(1, warmup)):
        t0 = time.monotonic()
        trainer.step()
        trainer.sync()
        warmup_s.append(time.monotonic() - t0)
    steady = warmup_s[1:] or warmup_s
    n = iterations or calibrate_iterations(sorted(steady)[len(steady) // 2], min_window_s)
    mark("ready")  # the runner has finished the previous run: no window overlaps its work
    latencies, samples = timed_steps(
        trainer, [n] * repeats, mark, min_window_s=0.0 if iterations else min_window_s,
        total_steps=len(warmup_s) + n * repeats)
    timings = TrainingTimings(
        windows=repeats, steps=tuple(len(w) for w in latencies), samples=tuple(samples),
        total_steps=len(trainer.losses), loss_start=start_loss,
        loss_end=evaluate_held_out(trainer.module, trainer.data).loss,
        losses=tuple(trainer.losses))
    return TrainMeasured([len(w) for w in latencies], latencies, first_warmup_t, timings)


def train_in_windows(trainer: Trainer, steps: int, windows: int,
                     mark: Callable[..., None]) -> TrainingTimings:
    """A technique's fine-tune: `steps` optimizer steps split over `windows` timed windows (at
    least two where the steps allow, so energy per step has an interval)."""
    count = max(1, min(windows, steps))
    split = [steps // count + (1 if i < steps % count else 0) for i in range(count)]
    start_loss = evaluate_held_out(trainer.module, trainer.data).loss
    latencies, samples = timed_steps(trainer, list(split), mark, total_steps=steps)
    end_loss = evaluate_held_out(trainer.module, trainer.data).loss
    return TrainingTimings(
        windows=count, steps=tuple(len(w) for w in latencies), samples=tuple(samples),
        total_steps=steps, loss_start=start_loss, loss_end=end_loss,
        losses=tuple(trainer.losses), in_compression=True)


def perplexity(loss: float) -> float:
    return math.exp(min(loss, 700.0))

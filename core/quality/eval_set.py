"""The inputs a run's quality is measured on: the model entry's dataset, or synthetic batches.

Batches have the run's batch size (a compressed module may be built for it); the last one is
filled up with the first samples again, and `valid_counts` says how many rows of each are real.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from energy_console.core.models.demo_tokenizer import DemoTokenizer
from energy_console.core.quality.datasets import (
    DatasetError,
    dataset_spec,
    evenly_spaced,
    load_labelled_images,
    load_labelled_texts,
    load_text_corpus,
    read_image,
)

SYNTHETIC_BATCHES = 4
SYNTHETIC_SEED = 1000  # distinct from the seeds of the timed inputs
DEFAULT_IMAGE_MEAN_STD = (0.5, 0.5)


@dataclass
class EvalSet:
    batches: list[dict[str, Any]]  # model kwargs, tensors on the CPU
    valid_counts: list[int]
    labels: Any = None  # label ids of the samples (torch.long), classifiers with a dataset
    dataset: str | None = None  # dataset path; None for synthetic inputs
    warnings: list[str] = field(default_factory=list)

    @property
    def samples(self) -> int:
        return sum(self.valid_counts)


def build_eval_set(loaded, spec) -> EvalSet:
    """Inputs for `loaded` at the run's batch size and sequence length or resolution."""
    size = spec.input_size
    if not spec.model.dataset:
        batches = [
            _to_cpu(loaded.make_inputs(spec.batch_size, size, seed=SYNTHETIC_SEED + i))
            for i in range(SYNTHETIC_BATCHES)
        ]
        return EvalSet(batches, [spec.batch_size] * len(batches))
    dataset = dataset_spec(spec.model.dataset, spec.model.base_dir)
    num_labels = _num_labels(loaded)
    if loaded.task == "text-classification":
        texts = load_labelled_texts(dataset, loaded.label_names, num_labels)
        tokenizer = text_tokenizer(loaded, spec.model)
        columns = tokenizer(texts.texts, max_length=size, padding="max_length", truncation=True,
                            return_tensors="pt")
        labels, warnings = texts.label_ids, texts.warnings
    elif loaded.task == "image-classification":
        images = load_labelled_images(dataset, loaded.label_names, num_labels)
        columns = {"pixel_values": _image_tensor(loaded, images.paths, size)}
        labels, warnings = images.label_ids, images.warnings
    elif loaded.task == "causal-lm":
        columns, warnings = _token_windows(loaded, spec, dataset, size)
        labels = None
    else:
        raise DatasetError(f"datasets are not supported for task {loaded.task!r}; remove "
                           "`dataset:` from this model entry")
    template = loaded.make_inputs(spec.batch_size, size, seed=0)  # the kwargs the model takes
    batches, valid = _batched(columns, template, spec.batch_size)
    label_tensor = None
    if labels is not None:
        import torch

        label_tensor = torch.tensor(labels, dtype=torch.long)
    return EvalSet(batches, valid, label_tensor, str(dataset.path), warnings)


def text_tokenizer(loaded, entry):
    """The tokenizer the model was trained with.

    A folder saved with the demo tokenizer says so in demo_tokenizer.json; demo models use it too.
    The loaded tokenizer counts only if it has words: transformers 5 builds one holding nothing but
    special tokens for a folder without tokenizer files, and every word would read as unknown.
    """
    if entry.source == "path":
        tokenizer = DemoTokenizer.from_folder(entry.resolved_ref)
        if tokenizer is not None:
            return tokenizer
    tokenizer = loaded.tokenizer
    if tokenizer is not None and len(tokenizer) > len(getattr(tokenizer, "all_special_ids", [])):
        if getattr(tokenizer, "pad_token", "") is None and getattr(tokenizer, "eos_token", None):
            tokenizer.pad_token = tokenizer.eos_token  # GPT-style tokenizers have no pad token
        return tokenizer
    if entry.source == "demo":
        return DemoTokenizer(loaded.config.vocab_size)
    raise DatasetError(f"model {entry.ref} has no tokenizer, so the dataset's text cannot be "
                       "encoded; save its tokenizer beside it (tokenizer.save_pretrained(folder))")


def _num_labels(loaded) -> int:
    if loaded.label_names:
        return len(loaded.label_names)
    return int(getattr(loaded.config, "num_labels", 0) or 0)


def _token_windows(loaded, spec, dataset, seq_len: int):
    """Non-overlapping windows of seq_len tokens over the whole text."""
    import torch

    tokenizer = text_tokenizer(loaded, spec.model)
    ids = list(tokenizer(load_text_corpus(dataset), add_special_tokens=False)["input_ids"])
    count = len(ids) // seq_len
    if count == 0:
        raise DatasetError(f"{dataset.path} has {len(ids)} tokens, fewer than one window of "
                           f"{seq_len}; use a longer text or a shorter sequence length")
    warnings = []
    keep = evenly_spaced(count, dataset.max_samples)
    if len(keep) < count:
        warnings.append(f"{dataset.name}: evaluated {len(keep)} of {count} windows of {seq_len} "
                        f"tokens (max_samples {dataset.max_samples})")
    windows = torch.tensor(ids[: count * seq_len], dtype=torch.long).view(count, seq_len)[keep]
    return {"input_ids": windows, "attention_mask": torch.ones_like(windows)}, warnings


def _image_tensor(loaded, paths, resolution: int):
    """Images resized to the run's resolution, normalised with the processor's mean and std."""
    import torch

    channels = int(getattr(loaded.config, "num_channels", 3) or 3)
    default_mean, default_std = DEFAULT_IMAGE_MEAN_STD
    processor = loaded.image_processor
    mean = torch.tensor(getattr(processor, "image_mean", None) or [default_mean] * channels)
    std = torch.tensor(getattr(processor, "image_std", None) or [default_std] * channels)
    images = []
    for path in paths:
        image = read_image(path)
        if image.shape[0] != channels:
            image = image.mean(0, keepdim=True).expand(channels, -1, -1)
        image = torch.nn.functional.interpolate(
            image[None], size=(resolution, resolution), mode="bilinear", antialias=True,
            align_corners=False,
        )[0]
        images.append((image - mean.view(-1, 1, 1)) / std.view(-1, 1, 1))
    return torch.stack(images)


def _batched(columns: dict[str, Any], template: dict[str, Any], batch_size: int):
    """Split the columns the model takes into batches; the model's other kwargs ride along."""
    import torch

    tensors = {k: v for k, v in columns.items() if k in template}
    extras = {k: v for k, v in template.items() if not isinstance(v, torch.Tensor)}
    count = len(next(iter(tensors.values())))
    batches, valid = [], []
    for start in range(0, count, batch_size):
        rows = list(range(start, min(start + batch_size, count)))
        valid.append(len(rows))
        rows += [i % count for i in range(batch_size - len(rows))]
        index = torch.tensor(rows)
        batches.append({**{k: v[index] for k, v in tensors.items()}, **extras})
    return batches, valid


def _to_cpu(inputs: dict[str, Any]) -> dict[str, Any]:
    return {k: v.cpu() if hasattr(v, "cpu") else v for k, v in inputs.items()}

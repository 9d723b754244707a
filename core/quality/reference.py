"""The uncompressed model's outputs on a run's evaluation inputs, computed once and cached.

A session's runs share a cache folder. The cache key covers the model (source, reference, task,
device, parameter dtype, and for local folders the files' sizes and times) and the exact input
tensors, so every compressed variant of one model and input set reuses one reference, and a changed
dataset or model gives a new one.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from energy_console.core.quality.eval_set import EvalSet, build_eval_set

CACHE_FORMAT = 1
# Causal LMs keep the reference's log-probabilities (for KL) only up to this many values.
MAX_STORED_LOG_PROBS = 32 * 2**20


@dataclass
class Reference:
    task: str
    mode: str  # classification | causal-lm | outputs
    eval_set: EvalSet
    baseline: dict[str, Any]  # tensors: logits | top1 (+ log_probs) | outputs
    device: str
    key: str
    cache_hit: bool = False
    seconds: float = 0.0
    warnings: list[str] = field(default_factory=list)


def output_mode(task: str) -> str:
    if task in ("text-classification", "image-classification"):
        return "classification"
    if task == "causal-lm":
        return "causal-lm"
    return "outputs"


def prepare_reference(loaded, spec, cache_dir: str | Path | None) -> Reference:
    """Evaluation inputs for the run and the uncompressed model's outputs on them.

    Call it on the uncompressed model, before any technique is applied. Raises DatasetError when
    the model entry's dataset cannot be used.
    """
    start = time.perf_counter()
    eval_set = build_eval_set(loaded, spec)
    device = str(module_device(loaded.module))
    key = _cache_key(loaded, spec, eval_set, device)
    mode = output_mode(loaded.task)
    path = Path(cache_dir) / f"quality-reference-{key[:20]}.pt" if cache_dir else None
    warnings = list(eval_set.warnings)
    baseline = _load_cached(path, key, warnings)
    cache_hit = baseline is not None
    if baseline is None:
        baseline = _baseline_outputs(loaded.module, eval_set, device, mode, warnings)
        if path is not None:
            _save_atomic(path, {"format": CACHE_FORMAT, "key": key, "baseline": baseline})
    elif mode == "causal-lm" and baseline.get("log_probs") is None:
        warnings.append(_KL_SKIPPED)
    return Reference(loaded.task, mode, eval_set, baseline, device, key, cache_hit,
                     time.perf_counter() - start, warnings)


def module_device(module):
    import torch

    for tensor in module.parameters():
        return tensor.device
    for tensor in module.buffers():
        return tensor.device
    return torch.device("cpu")


def run_batches(module, eval_set: EvalSet, device: str, input_dtype=None):
    """Yield each batch's main output (logits) as float32 on the CPU, real rows only."""
    import torch

    with torch.no_grad():  # not inference_mode: some quantized modules fail under it
        for batch, valid in zip(eval_set.batches, eval_set.valid_counts, strict=True):
            inputs = {k: _to_device(v, device, input_dtype) for k, v in batch.items()}
            yield main_output(module(**inputs))[:valid].float().cpu()


def main_output(outputs):
    for name in ("logits", "last_hidden_state"):
        value = getattr(outputs, name, None)
        if value is not None:
            return value
    if isinstance(outputs, (tuple, list)):
        return outputs[0]
    return outputs


def _to_device(value, device: str, input_dtype):
    if not hasattr(value, "to"):
        return value
    if input_dtype is not None and value.is_floating_point():
        return value.to(device=device, dtype=input_dtype)
    return value.to(device)


_KL_SKIPPED = ("mean KL not computed: the uncompressed model's token distributions are too "
               "large to keep; lower max_samples or the batch size to get it")


def _baseline_outputs(module, eval_set, device, mode, warnings) -> dict[str, Any]:
    import torch

    outputs = list(run_batches(module, eval_set, device))
    if mode == "classification":
        return {"logits": torch.cat(outputs)}
    if mode == "outputs":
        return {"outputs": torch.cat([o.reshape(o.shape[0], -1) for o in outputs])}
    top1 = torch.cat([o.argmax(-1) for o in outputs])
    log_probs = None
    if sum(o.numel() for o in outputs) <= MAX_STORED_LOG_PROBS:
        log_probs = torch.cat([o.log_softmax(-1).half() for o in outputs])
    else:
        warnings.append(_KL_SKIPPED)
    return {"top1": top1, "log_probs": log_probs}


def model_identity(loaded, spec, device: str, cache_format: int) -> dict[str, Any]:
    """What makes the uncompressed model's outputs what they are, for a cache key: source, ref,
    task, device, dtype, the source's options, and a local folder's files, an ONNX file or a
    weights file (size and mtime)."""
    entry = spec.model
    identity: dict[str, Any] = {
        "format": cache_format,
        "source": entry.source,
        "ref": entry.resolved_ref,
        "task": loaded.task,
        "device": device,
        "dtype": next((str(p.dtype) for p in loaded.module.parameters()), "none"),
    }
    if entry.source == "path" and Path(entry.resolved_ref).is_dir():
        identity["files"] = sorted(
            (f.name, f.stat().st_size, f.stat().st_mtime_ns)
            for f in Path(entry.resolved_ref).iterdir()
            if f.is_file()
        )
    if entry.options:  # a factory's args and weights, an ONNX file's preprocessing
        identity["options"] = entry.options
    weights = (entry.options or {}).get("weights")
    for key, name in (("file", entry.resolved_ref if entry.source == "onnx" else None),
                      ("weights", entry.resolve(weights) if isinstance(weights, str) else None)):
        if name and Path(name).is_file():
            identity[key] = (Path(name).stat().st_size, Path(name).stat().st_mtime_ns)
    return identity


def _cache_key(loaded, spec, eval_set: EvalSet, device: str) -> str:
    identity = model_identity(loaded, spec, device, CACHE_FORMAT)
    digest = hashlib.sha256(json.dumps(identity, sort_keys=True).encode())
    tensors = [*eval_set.batches, {"labels": eval_set.labels}]
    for batch in tensors:
        for name in sorted(batch):
            value = batch[name]
            digest.update(name.encode())
            if hasattr(value, "numpy"):
                digest.update(f"{value.dtype}{tuple(value.shape)}".encode())
                digest.update(value.contiguous().numpy().tobytes())
            else:
                digest.update(repr(value).encode())
    return digest.hexdigest()


def _load_cached(path: Path | None, key: str, warnings: list[str]) -> dict[str, Any] | None:
    import torch

    if path is None or not path.is_file():
        return None
    try:
        data = torch.load(path, weights_only=True)
    except Exception as exc:  # a torn or foreign file: compute the reference again
        warnings.append(f"quality reference cache {path.name} unreadable ({exc}); recomputed")
        return None
    if data.get("format") != CACHE_FORMAT or data.get("key") != key:
        return None
    return data["baseline"]


def _save_atomic(path: Path, data: dict[str, Any]) -> None:
    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    torch.save(data, tmp)
    os.replace(tmp, path)

"""Honest size accounting: bytes of the serialised state dict, never a sum of parameter bytes.

(Parameter bytes read 0 after quantize_dynamic, whose weights live in packed params, and fp32 for
tensor subclasses.) Parameter counts include the weights of quantized modules, which torch no longer
lists as parameters.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field


@dataclass(frozen=True)
class SizeReport:
    size_bytes: int
    params: int
    nonzero_params: int
    dtype_bytes: dict[str, int] = field(default_factory=dict)  # state-dict tensor bytes per dtype


def measure_size(module) -> SizeReport:
    """Size of a module as it would be saved.

    A module that is not stored as a state dict (an ONNX session) carries `size_report`, or at
    least `serialized_size_bytes`.
    """
    import torch

    report = getattr(module, "size_report", None)
    if isinstance(report, SizeReport):
        return report
    override = getattr(module, "serialized_size_bytes", None)
    state = module.state_dict()
    if override is None:
        buffer = io.BytesIO()
        torch.save(state, buffer)
        size_bytes = buffer.getbuffer().nbytes
    else:
        size_bytes = int(override)
    dtype_bytes: dict[str, int] = {}
    for value in _state_tensors(state.values()):
        key = str(value.dtype).replace("torch.", "")
        dtype_bytes[key] = dtype_bytes.get(key, 0) + value.element_size() * value.nelement()
    params = nonzero = 0
    for weight in _weights(module):
        params += weight.numel()
        nonzero += _count_nonzero(weight)
    return SizeReport(size_bytes, params, nonzero, dtype_bytes)


def _state_tensors(values):
    """Tensors of a state dict, including those packed in tuples (quantized Linear's params)."""
    import torch

    for value in values:
        if isinstance(value, torch.Tensor):
            yield value
        elif isinstance(value, tuple | list):
            yield from _state_tensors(value)


def _weights(module):
    """Every parameter once, plus the weight and bias of quantized modules (methods there)."""
    import torch

    seen: dict[int, object] = {}  # holds the tensors too: a freed tensor's id can come back
    for sub in module.modules():
        tensors = list(sub.parameters(recurse=False))
        if not tensors and callable(getattr(sub, "weight", None)):
            packed = [sub.weight(), sub.bias() if callable(getattr(sub, "bias", None)) else None]
            tensors = [t for t in packed if isinstance(t, torch.Tensor)]
        for tensor in tensors:
            if id(tensor) not in seen:
                seen[id(tensor)] = tensor
                yield tensor


def _count_nonzero(tensor) -> int:
    import torch

    values = tensor.detach()
    if values.is_quantized:
        values = values.dequantize()
    elif type(values) is not torch.Tensor and hasattr(values, "dequantize"):
        values = values.dequantize()  # optimum-quanto tensor subclasses
    return int(torch.count_nonzero(values).item())

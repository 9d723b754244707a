"""A compressed variant stored as weights alone (safetensors), for the variant cache.

A variant whose modules are those of the uncompressed model, with the same tensor shapes, plain
tensors and no hooks added (a precision cast, in-place magnitude pruning, the baseline) is its
tensors: it is rebuilt by loading the uncompressed model and putting the stored tensors in place
(their dtypes with them). Nothing in such an entry runs code when read. A variant that changed
its structure (quantized modules, tensor subclasses, reshaped layers, pruning's hooks) has no
architecture to load tensors into without compressing again: the cache keeps it as a checked
pickle (variant_cache.py).

`module_structure` is taken from the uncompressed module before compressing; a variant with the
same structure is `plain_tensors`; `rebuild` checks the model just loaded has that structure
again before it takes the tensors.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

METADATA_KEY = "energy_console"


def module_structure(module) -> dict[str, list]:
    """Each module's name, class and hook count, and each tensor's name and shape (not dtype:
    a precision cast keeps the structure)."""
    return {
        "modules": [[name, f"{type(m).__module__}.{type(m).__qualname__}", _hooks(m)]
                    for name, m in module.named_modules()],
        "tensors": [[name, list(t.shape)] for name, t in _tensors(module)],
    }


def plain_tensors(module, base_structure: dict[str, list] | None) -> dict[str, Any] | None:
    """The variant's tensors by name when it is the uncompressed model's structure with plain
    tensors (stored as weights alone); None otherwise."""
    import torch

    if base_structure is None or module_structure(module) != base_structure:
        return None
    tensors = {}
    for name, tensor in _tensors(module):
        if type(tensor) not in (torch.Tensor, torch.nn.Parameter):
            return None  # a tensor subclass (quantized, sparse): not weights alone
        tensors[name] = tensor.detach().cpu().contiguous()
    return tensors


def encode(module, tensors: dict[str, Any], about: dict[str, Any]) -> bytes:
    """A safetensors file of `tensors` whose metadata holds `about`, the variant's structure,
    which tensors need gradients and which modules are in training mode."""
    from safetensors.torch import save

    meta = {**about, "structure": module_structure(module),
            "requires_grad": [name for name, t in module.named_parameters() if t.requires_grad],
            "training": [name for name, m in module.named_modules() if m.training]}
    return save(tensors, metadata={METADATA_KEY: json.dumps(meta)})


def decode(path: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(tensors on the CPU, the metadata `encode` wrote) of a safetensors file."""
    from safetensors import safe_open

    with safe_open(path, framework="pt", device="cpu") as f:
        meta = json.loads((f.metadata() or {})[METADATA_KEY])
        return {name: f.get_tensor(name) for name in f.keys()}, meta  # noqa: SIM118


def rebuild(base_module, tensors: dict[str, Any], meta: dict[str, Any]):
    """The uncompressed module, just loaded, with the stored tensors in place (each parameter
    object kept, so tied weights stay tied); None when its structure is not the stored one."""
    if module_structure(base_module) != meta["structure"] or set(tensors) != {
            name for name, _ in _tensors(base_module)}:
        return None
    needs_grad, training = set(meta["requires_grad"]), set(meta["training"])
    for name, tensor in _tensors(base_module):
        # a copy in memory of torch's own: not the file's mapping, aligned as kernels expect
        # (an unaligned weight takes another matmul path, whose sums differ in the last bits)
        tensor.data = tensors[name].to(tensor.device, copy=True)
    for name, parameter in base_module.named_parameters():
        parameter.requires_grad_(name in needs_grad)
    for name, module in base_module.named_modules():
        module.training = name in training
    return base_module


def _tensors(module) -> Iterator[tuple[str, Any]]:
    """Parameters and buffers (non-persistent ones too: a cast changes them), each object once."""
    yield from module.named_parameters()
    yield from module.named_buffers()


def _hooks(module) -> int:
    # hooks a technique adds (torch.nn.utils.prune's masks) make a variant more than its tensors
    return len(module._forward_pre_hooks) + len(module._forward_hooks)  # noqa: SLF001

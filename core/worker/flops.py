"""Floating-point operations of one forward pass, counted by torch.utils.flop_counter.

Counted on the uncompressed model for every technique but structured pruning: quantization and
lower precision do the same arithmetic in cheaper formats (the counter cannot see quantized
kernels at all), and unstructured pruning keeps dense shapes. Structured pruning removes channels
and heads, so its count is taken on the pruned model. Worker-side: imports torch.
"""

from __future__ import annotations

from typing import Any

SHAPE_CHANGING_TECHNIQUES = ("structured-prune",)


def changes_flops(technique_names: list[str]) -> bool:
    return any(name in SHAPE_CHANGING_TECHNIQUES for name in technique_names)


def count_flops(module: Any, inputs: dict[str, Any]) -> int | None:
    """FLOPs of module(**inputs); None where the counter cannot run the module."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    try:
        with torch.inference_mode(), FlopCounterMode(display=False) as counter:
            module(**inputs)
    except Exception:  # a module the counter cannot run: no figure rather than a wrong one
        return None
    total = counter.get_total_flops()
    return int(total) if total else None

"""Precision casts: fp16 and bf16 weights and activations."""

from __future__ import annotations

from energy_console.core.compression import register
from energy_console.core.compression.base import Technique


def _cast(dtype_name: str):
    def apply(module, ctx, params):
        import torch

        dtype = getattr(torch, dtype_name)
        if ctx.device_type == "cpu" and dtype_name == "float16":
            ctx.warnings.append(
                "fp16 on a CPU: most CPUs have no fp16 arithmetic and run it 5-25x slower than "
                "fp32; the energy figures reflect that, not fp16 on an accelerator"
            )
        ctx.input_dtype = dtype
        return module.to(dtype)

    return apply


FP16 = register(
    Technique(
        name="fp16",
        family="precision",
        summary="cast weights and activations to float16",
        apply=_cast("float16"),
        layers="all floating-point tensors",
    )
)

BF16 = register(
    Technique(
        name="bf16",
        family="precision",
        summary="cast weights and activations to bfloat16",
        apply=_cast("bfloat16"),
        layers="all floating-point tensors",
    )
)

"""Semi-structured (2:4) sparsity: sparse tensor cores on CUDA compute capability 8.0 and up."""

from __future__ import annotations

from energy_console.core.compression import register
from energy_console.core.compression.base import Technique
from energy_console.core.compression.quantization import conv1d_to_linear
from energy_console.core.models.base import NotApplicable

MIN_COMPUTE_CAPABILITY = (8, 0)


def _check_sparse(ctx, params) -> str | None:
    import torch

    if not torch.cuda.is_available():
        return "sparse-2:4 needs a CUDA GPU of compute capability 8.0 or newer; none is visible"
    capability = torch.cuda.get_device_capability(ctx.device)
    if capability < MIN_COMPUTE_CAPABILITY:
        return (
            f"sparse-2:4 needs compute capability >= 8.0 (Ampere); {ctx.device} has "
            f"{capability[0]}.{capability[1]}"
        )
    return None


def _two_of_four_mask(weight):
    """Keep the 2 largest magnitudes in every group of 4 along the input dimension."""
    import torch

    groups = weight.detach().abs().reshape(-1, 4)
    keep = torch.topk(groups, 2, dim=1).indices
    mask = torch.zeros_like(groups, dtype=torch.bool).scatter_(1, keep, True)
    return mask.reshape(weight.shape)


def _apply_sparse(module, ctx, params):
    import torch
    from torch.sparse import to_sparse_semi_structured

    conv1d_to_linear(module)
    if next(module.parameters()).dtype == torch.float32:
        # the sparse kernels take fp16/bf16/int8 only
        module = module.half()
        ctx.input_dtype = torch.float16
        ctx.warnings.append("sparse-2:4 runs the model in fp16: the sparse kernels have no fp32")
    converted = 0
    for layer in module.modules():
        if not isinstance(layer, torch.nn.Linear):
            continue
        out_features, in_features = layer.weight.shape
        if out_features % 32 or in_features % 64:  # the kernels' minimum tile shapes
            continue
        with torch.no_grad():
            dense = layer.weight * _two_of_four_mask(layer.weight)
            layer.weight = torch.nn.Parameter(to_sparse_semi_structured(dense))
        converted += 1
    if not converted:
        raise NotApplicable("sparse-2:4 found no nn.Linear with a shape the sparse kernels take")
    ctx.extra_result["sparse_layers"] = converted
    return module


SPARSE_2_4 = register(
    Technique(
        name="sparse-2:4",
        family="sparsity",
        summary="2:4 semi-structured sparsity (half the weights zero, sparse tensor cores)",
        apply=_apply_sparse,
        devices=("cuda",),
        layers="nn.Linear with out % 32 == 0 and in % 64 == 0",
        check=_check_sparse,
    )
)

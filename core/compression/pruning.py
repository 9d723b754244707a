"""Pruning: unstructured magnitude pruning (masks made permanent) and structured channel pruning."""

from __future__ import annotations

import warnings

from energy_console.core.compression import register
from energy_console.core.compression.base import Param, Technique
from energy_console.core.compression.magnitude import prune_smallest, unique_tensors
from energy_console.core.compression.quantization import conv1d_to_linear
from energy_console.core.models.base import NotApplicable

_PRUNABLE = ("Linear", "Conv1d", "Conv2d", "Conv3d")


def _prunable_layers(module) -> list:
    return [m for m in module.modules() if type(m).__name__ in _PRUNABLE]


def _magnitude_prune(module, ctx, params):
    conv1d_to_linear(module)
    layers = _prunable_layers(module)
    if not layers:
        raise NotApplicable("magnitude-prune found no Linear or convolution layer to prune")
    amount = params["amount"]
    weights = unique_tensors([layer.weight for layer in layers])  # a tied weight counts once
    if params["scope"] == "global":
        prune_smallest(weights, amount)
    else:
        for weight in weights:
            prune_smallest([weight], amount)
    total = sum(weight.numel() for weight in weights)
    zeros = sum(int((weight == 0).sum()) for weight in weights)
    ctx.extra_result["sparsity"] = round(zeros / total, 4)
    ctx.extra_result["pruned_layers"] = len(layers)
    ctx.warnings.append(
        f"magnitude-prune zeroed {zeros / total:.0%} of the Linear/conv weights, but they are "
        "stored and computed densely: size_bytes and speed do not change (see nonzero_params)"
    )
    return module


MAGNITUDE_PRUNE = register(
    Technique(
        name="magnitude-prune",
        family="pruning",
        summary="unstructured L1 magnitude pruning, made permanent (zeros in dense weights)",
        apply=_magnitude_prune,
        params=(
            Param("amount", float, 0.5, "fraction of weights set to zero", minimum=0, maximum=1),
            Param(
                "scope",
                str,
                "global",
                "global: smallest weights model-wide; layer: the same fraction in every layer",
                choices=("global", "layer"),
            ),
        ),
        layers="weights of nn.Linear and convolutions (GPT-2's Conv1D as nn.Linear)",
    )
)


# Structured pruning -------------------------------------------------------------------------

_QUERY_NAMES = ("query", "q_proj", "q_lin")
_KEY_NAMES = ("key", "k_proj", "k_lin")
_VALUE_NAMES = ("value", "v_proj", "v_lin")
_FUSED_QKV_NAMES = ("c_attn",)
_HEADS_ATTRS = ("num_attention_heads", "num_heads", "n_heads")


def _attention_modules(module) -> list[tuple]:
    """(attention module, number of heads, its projections) for each attention block."""
    found = []
    for sub in module.modules():
        heads = next((getattr(sub, a) for a in _HEADS_ATTRS if hasattr(sub, a)), None)
        if not isinstance(heads, int):
            continue
        projections = [
            getattr(sub, n)
            for names in (_QUERY_NAMES, _KEY_NAMES, _VALUE_NAMES, _FUSED_QKV_NAMES)
            for n in names
            if hasattr(sub, n)
        ]
        if projections:
            found.append((sub, heads, projections))
    return found


def _update_attention(attention, heads: int, projections: list) -> None:
    """Head sizes follow the pruned projections, or the forward pass reshapes wrongly."""
    fused = len(projections) == 1
    all_heads = projections[0].out_features // (3 if fused else 1)
    head_dim = all_heads // heads
    for attr, value in (
        ("attention_head_size", head_dim),
        ("head_dim", head_dim),
        ("all_head_size", all_heads),
        ("embed_dim", all_heads),
        ("split_size", all_heads),
    ):
        if hasattr(attention, attr):
            setattr(attention, attr, value)
    if hasattr(attention, "scaling"):
        attention.scaling = head_dim**-0.5


def _classifier_layers(module) -> list:
    """The output layers to keep whole: classifier heads and the LM head."""
    kept = []
    for name in ("classifier", "lm_head", "score", "head"):
        head = getattr(module, name, None)
        if head is not None:
            kept.extend(_prunable_layers(head) or [head])
    return kept


def _update_config(module) -> None:
    config = getattr(module, "config", None)
    if config is None:
        return
    norms = [m for m in module.modules() if type(m).__name__ == "LayerNorm"]
    if norms and hasattr(config, "hidden_size"):
        config.hidden_size = norms[-1].normalized_shape[0]
    kept = _classifier_layers(module)
    widths = [
        m.out_features
        for m in _prunable_layers(module)
        if hasattr(m, "out_features") and m not in kept
    ]
    if getattr(config, "intermediate_size", None) and widths:
        config.intermediate_size = max(widths)  # the MLP's inner width is the widest Linear


def _logits_sum(output):
    return (output.logits if hasattr(output, "logits") else output[0]).sum()


def _structured_prune(module, ctx, params):
    import torch
    import torch_pruning as tp

    conv1d_to_linear(module)
    inputs = ctx.calibration_inputs()
    if not inputs:
        raise NotApplicable(
            "structured-prune needs an example input to trace and the run gave none"
        )
    example = dict(inputs[0])
    if "use_cache" in module.forward.__code__.co_varnames:
        example["use_cache"] = False
    attention = _attention_modules(module)
    num_heads = {p: heads for _, heads, projections in attention for p in projections}
    before = sum(p.numel() for p in module.parameters())
    try:
        with warnings.catch_warnings():
            # cls tokens and position embeddings: pruned on their last dimension, as intended
            warnings.filterwarnings("ignore", message="Unwrapped parameters")
            pruner = tp.pruner.BasePruner(
                module,
                example_inputs=example,
                importance=tp.importance.MagnitudeImportance(p=2, group_reduction="mean"),
                pruning_ratio=params["ratio"],
                ignored_layers=_classifier_layers(module),
                round_to=8,
                num_heads=num_heads,
                output_transform=_logits_sum,
            )
        with torch.no_grad():
            pruner.step()
    except Exception as exc:  # noqa: BLE001 - torch-pruning's tracing errors vary
        raise NotApplicable(
            f"structured-prune: torch-pruning cannot trace this model's dependencies ({exc}); "
            "use magnitude-prune, or a model whose layers torch-pruning supports"
        ) from exc
    for sub, heads, projections in attention:
        _update_attention(sub, heads, projections)
    _update_config(module)
    after = sum(p.numel() for p in module.parameters())
    ctx.extra_result["params_removed_fraction"] = round(1 - after / before, 4)
    return module


STRUCTURED_PRUNE = register(
    Technique(
        name="structured-prune",
        family="pruning",
        summary="torch-pruning dependency-aware channel and attention-head-dim pruning; shrinks",
        apply=_structured_prune,
        not_for=(
            ("YOLOS", "its detection tokens' attention dims do not follow the pruned channels: "
                      "the pruned model no longer runs"),
            ("RT-DETR", "torch-pruning cannot trace its hybrid encoder's dependencies"),
        ),
        params=(
            Param(
                "ratio",
                float,
                0.3,
                "fraction of channels removed per layer",
                minimum=0,
                maximum=0.9,
            ),
        ),
        layers="channels of Linear/conv layers and their coupled norms, embeddings, heads' dims; "
        "classifier kept",
        requires=("torch_pruning",),
        extra="pruning",
    )
)

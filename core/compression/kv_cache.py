"""KV-cache techniques for generate runs: the weights stay as they are, `generate` keeps its
key/value cache another way.

`kv-cache-quant` stores the cache quantized (transformers' QuantizedCache with the optimum-quanto
backend, 2 or 4 bits; the newest `residual_length` tokens stay in full precision until they are
quantized in a block); `static-cache` preallocates it at its full length (transformers'
StaticCache, the layout torch.compile needs). Both are set on the model's generation_config, so
every generate call of the run uses them: the timed windows and the fidelity outputs alike.
An infer run calls no generate and keeps no cache across calls: it is skipped with that reason.
quanto's cache takes 2 or 4 bits only (`dtype: int4` or `int2`; int8 needs transformers' HQQ
backend, not offered here).
"""

from __future__ import annotations

from typing import Any

from energy_console.core.compression import register
from energy_console.core.compression.base import Param, Technique, TechniqueContext

_LAYERS = "the key/value cache of generate (weights untouched)"
_BITS = {"int4": 4, "int2": 2}  # what quanto's cache can store


def _generate_only(name: str, ctx: TechniqueContext) -> str | None:
    if ctx.workload != "generate":
        return (f"{name} changes the KV cache of text generation: it applies to generate runs "
                "only (`workload: generate`); a forward pass keeps no cache")
    if getattr(ctx.loaded.module, "generation_config", None) is None:
        return f"{name}: this model has no generation_config, so generate cannot take a cache"
    return None


def _check_quantized(ctx: TechniqueContext, params: dict[str, Any]) -> str | None:
    reason = _generate_only("kv-cache-quant", ctx)
    if reason:
        return reason
    module: Any = ctx.loaded.module
    supports = getattr(module, "_supports_default_dynamic_cache", lambda: False)
    if getattr(module.config, "is_encoder_decoder", False) or not supports():
        return "kv-cache-quant: transformers has no quantized cache for this model"
    return None


def _check_static(ctx: TechniqueContext, params: dict[str, Any]) -> str | None:
    reason = _generate_only("static-cache", ctx)
    if reason:
        return reason
    if not getattr(ctx.loaded.module, "_can_compile_fullgraph", False):
        return "static-cache: transformers has no static cache for this model"
    return None


def _quantized(module, ctx: TechniqueContext, params: dict[str, Any]):
    config = {"backend": "quanto", "nbits": _BITS[params["dtype"]],
              "residual_length": params["residual_length"]}
    module.generation_config.cache_implementation = "quantized"
    module.generation_config.cache_config = dict(config)
    ctx.extra_result["kv_cache"] = {"implementation": "quantized", **config}
    return module


def _static(module, ctx: TechniqueContext, params: dict[str, Any]):
    module.generation_config.cache_implementation = "static"
    ctx.extra_result["kv_cache"] = {"implementation": "static"}
    return module


KV_CACHE_QUANT = register(
    Technique(
        name="kv-cache-quant",
        family="kv-cache",
        summary="generate's KV cache quantized (transformers QuantizedCache, quanto backend)",
        apply=_quantized,
        params=(
            Param("dtype", str, "int4", "how each cached key/value is stored",
                  choices=tuple(_BITS)),
            Param("residual_length", int, 128,
                  "newest tokens kept in full precision before a block is quantized",
                  minimum=1, maximum=65536),
        ),
        layers=_LAYERS,
        requires=("optimum.quanto",),
        extra="quanto",
        check=_check_quantized,
    )
)

STATIC_CACHE = register(
    Technique(
        name="static-cache",
        family="kv-cache",
        summary="generate's KV cache preallocated at full length (transformers StaticCache)",
        apply=_static,
        layers=_LAYERS,
        check=_check_static,
    )
)

"""Weight-only quantization with optimum-quanto (Linear and Conv2d, on CPU and CUDA)."""

from __future__ import annotations

from energy_console.core.compression import register
from energy_console.core.compression.base import Technique
from energy_console.core.compression.quantization import conv1d_to_linear

_LAYERS = "nn.Linear, nn.Conv2d (GPT-2's Conv1D converted to nn.Linear first); activations stay"


def _quanto_weights(qtype_name: str):
    def apply(module, ctx, params):
        import optimum.quanto as quanto
        from optimum.quanto import freeze, quantize

        conv1d_to_linear(module)
        quantize(module, weights=getattr(quanto, qtype_name))
        freeze(module)
        # quanto's packed int4 kernels fail under torch.inference_mode(); no_grad works.
        ctx.needs_no_grad = True
        return module

    return apply


def _register(name: str, qtype_name: str, summary: str) -> Technique:
    return register(
        Technique(
            name=name,
            family="quantization",
            summary=summary,
            apply=_quanto_weights(qtype_name),
            layers=_LAYERS,
            requires=("optimum.quanto",),
            extra="quanto",
        )
    )


WEIGHT_INT8 = _register("weight-int8", "qint8", "optimum-quanto int8 weights, float activations")
WEIGHT_INT4 = _register("weight-int4", "qint4", "optimum-quanto int4 weights, float activations")
WEIGHT_FP8 = _register(
    "weight-fp8", "qfloat8", "optimum-quanto float8 (e4m3) weights, float activations"
)

"""Techniques that train: `finetune` (a chain step, e.g. prune → finetune → quantize), `qat`
(quantization-aware training with torch.ao fake quantization, converted to int8 kernels) and
`weight-int8-qat` (optimum-quanto int8 weights trained through, then frozen).

Both train through TechniqueContext.train, which the worker fills: the optimizer steps run in
timed windows the runner measures, so the run carries the energy its training cost
(train_energy_j) beside its energy per inference. Each is compared with its post-training
variant: the same chain without `finetune`, `static-int8` for `qat`, `weight-int8` for
`weight-int8-qat` (core.compression.POST_TRAINING).
"""

from __future__ import annotations

import functools

from energy_console.core.compression import register
from energy_console.core.compression.base import Param, Technique
from energy_console.core.compression.quantization import conv1d_to_linear, quiet_torch_ao
from energy_console.core.models.base import NotApplicable

# split over the protocol's repeats as timed windows
STEPS = Param("steps", int, 20, "optimizer steps", minimum=1, maximum=1_000_000)


def _check_trainable(ctx, params) -> str | None:
    if ctx.train is None:
        return ("training techniques run in infer runs of a model with a dataset (the train "
                "workload fine-tunes by itself)")
    return None


def _finetune(module, ctx, params):
    assert ctx.train is not None  # _check_trainable
    return ctx.train(module, ctx, params["steps"], keep_zeros=True)


FINETUNE = register(
    Technique(
        name="finetune",
        family="training",
        summary="fine-tune on the model's dataset (after pruning: zeros stay zero), energy "
                "measured",
        apply=_finetune,
        params=(STEPS,),
        layers="every trainable floating-point parameter (optimizer from the model's training:)",
        check=_check_trainable,
    )
)


@functools.cache
def _wrapper_class():
    import torch
    from torch.ao.quantization import DeQuantStub, QuantStub

    class QatLinear(torch.nn.Module):
        """A Linear between quantize and dequantize stubs: eager-mode QAT quantizes each layer
        on its own, the rest of the model (embeddings, norms, attention) stays float."""

        def __init__(self, linear):
            super().__init__()
            self.quant, self.linear, self.dequant = QuantStub(), linear, DeQuantStub()

        @property
        def weight(self):  # callers that read a layer's dtype or device still find it
            weight = self.linear.weight
            return weight() if callable(weight) else weight

        def forward(self, x):
            return self.dequant(self.linear(self.quant(x)))

    return QatLinear


def _wrap_linears(module, qconfig) -> int:
    import torch

    wrapper = _wrapper_class()
    count = 0
    for parent in list(module.modules()):
        if isinstance(parent, wrapper):
            continue
        for name, child in list(parent.named_children()):
            if type(child) is torch.nn.Linear:
                wrapped = wrapper(child)
                wrapped.qconfig = qconfig
                setattr(parent, name, wrapped)
                count += 1
    return count


def _qat(module, ctx, params):
    import torch

    assert ctx.train is not None  # _check_trainable
    with quiet_torch_ao():
        from torch.ao.quantization import convert, get_default_qat_qconfig, prepare_qat

    engine = next((e for e in ("x86", "fbgemm", "qnnpack")
                   if e in torch.backends.quantized.supported_engines), None)
    if engine is None:
        raise NotApplicable("qat needs a quantized engine (x86, fbgemm or qnnpack) and this "
                            "torch build has none")
    torch.backends.quantized.engine = engine
    conv1d_to_linear(module)
    qconfig = get_default_qat_qconfig(engine)
    if not _wrap_linears(module, qconfig):
        raise NotApplicable("qat found no nn.Linear layer to quantize")
    module.train()
    with quiet_torch_ao():
        prepare_qat(module, inplace=True)
    module = ctx.train(module, ctx, params["steps"])
    module.eval()
    with quiet_torch_ao():
        convert(module, inplace=True)
    ctx.needs_no_grad = True
    ctx.extra_result["qat_engine"] = engine
    return module


QAT = register(
    Technique(
        name="qat",
        family="quantization",
        summary="quantization-aware training: fake-quant int8 Linear layers fine-tuned, then "
                "converted (torch.ao eager mode)",
        apply=_qat,
        params=(STEPS,),
        devices=("cpu",),
        layers="nn.Linear (GPT-2's Conv1D as nn.Linear), each quantized on its own; x86/fbgemm "
               "int8 kernels",
        check=_check_trainable,
    )
)


def _quanto_qat(module, ctx, params):
    from optimum.quanto import freeze, qint8, quantize

    assert ctx.train is not None  # _check_trainable
    conv1d_to_linear(module)
    quantize(module, weights=qint8)  # float weights kept, quantized in every forward pass
    module = ctx.train(module, ctx, params["steps"])
    freeze(module)
    ctx.needs_no_grad = True
    return module


QUANTO_QAT = register(
    Technique(
        name="weight-int8-qat",
        family="quantization",
        summary="optimum-quanto int8 weights trained through (straight-through), then frozen",
        apply=_quanto_qat,
        params=(STEPS,),
        layers="nn.Linear, nn.Conv2d (GPT-2's Conv1D converted to nn.Linear first); "
               "activations stay float",
        requires=("optimum.quanto",),
        extra="quanto",
        check=_check_trainable,
    )
)

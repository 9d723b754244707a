"""int8 quantization with torch's own kernels (CPU) and torchao's (CUDA)."""

from __future__ import annotations

import functools
import inspect
import warnings
from contextlib import contextmanager

from energy_console.core.compression import register
from energy_console.core.compression.base import Param, Technique
from energy_console.core.models.base import NotApplicable

QUANTIZABLE_LAYERS = "nn.Linear (GPT-2's Conv1D converted to nn.Linear first)"


@contextmanager
def quiet_torch_ao():
    """torch.ao.quantization is deprecated (removal pending); its warnings are not the user's."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        warnings.filterwarnings("ignore", category=FutureWarning)
        warnings.filterwarnings("ignore", category=UserWarning, module=r"torch\.ao\..*")
        yield


def conv1d_to_linear(module):
    """Replace transformers' Conv1D (GPT-2) by the equivalent nn.Linear, in place.

    Conv1D is a Linear with a transposed weight; quantizers and pruners only know nn.Linear.
    """
    import torch

    try:
        from transformers.pytorch_utils import Conv1D
    except ImportError:
        return module
    for parent in list(module.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, Conv1D):
                linear = torch.nn.Linear(child.nx, child.nf, device=child.weight.device)
                linear = linear.to(child.weight.dtype)
                with torch.no_grad():
                    linear.weight.copy_(child.weight.t())
                    linear.bias.copy_(child.bias)
                setattr(parent, name, linear)
    return module


def _quantize_dynamic_cpu(module, ctx, params):
    import torch

    conv1d_to_linear(module)
    with quiet_torch_ao():
        from torch.ao.quantization import quantize_dynamic

        return quantize_dynamic(module, {torch.nn.Linear}, dtype=torch.qint8)


def _quantize_dynamic_torchao(module, ctx, params):
    with quiet_torch_ao():
        from torchao.quantization import Int8DynamicActivationInt8WeightConfig, quantize_

    conv1d_to_linear(module)
    quantize_(module, Int8DynamicActivationInt8WeightConfig())
    return module


def _quantize_dynamic(module, ctx, params):
    if ctx.device_type == "cuda":
        return _quantize_dynamic_torchao(module, ctx, params)
    return _quantize_dynamic_cpu(module, ctx, params)


def _check_dynamic(ctx, params) -> str | None:
    import importlib.util

    if ctx.device_type == "cuda" and importlib.util.find_spec("torchao") is None:
        return (
            "dynamic-int8 on CUDA needs torchao (int8 dynamic activation, int8 weight): "
            "pip install 'energy-console[torchao]'"
        )
    return None


DYNAMIC_INT8 = register(
    Technique(
        name="dynamic-int8",
        family="quantization",
        summary="dynamic int8 quantization (int8 weights, activations quantized per batch)",
        apply=_quantize_dynamic,
        devices=("cpu", "cuda"),
        layers=f"{QUANTIZABLE_LAYERS}; convolutions stay fp32; CUDA through torchao",
        check=_check_dynamic,
    )
)


# Static int8: FX graph mode, applied block by block. Hugging Face models do not trace as a whole
# (control flow on inputs, optional arguments), so every largest sub-module that traces and is
# called with tensors only is quantized as one graph (conv-bn-relu fused inside it), with
# quantize/dequantize at its edges.

_STATIC_LAYER_TYPES = ("Linear", "Conv1d", "Conv2d", "Conv3d")


def _has_static_layers(module) -> bool:
    return any(type(m).__name__ in _STATIC_LAYER_TYPES for m in module.modules())


def _tensor_only_calls(module, inputs: list[dict]) -> dict:
    """Sub-modules called with positional tensors only (no kwargs), mapped to those example args."""
    import torch

    seen: dict = {}
    rejected: set = set()

    def hook(mod, args, kwargs):
        ok = not kwargs and args and all(isinstance(a, torch.Tensor) for a in args)
        if ok and mod not in rejected:
            seen.setdefault(mod, tuple(a.detach() for a in args))
        else:
            rejected.add(mod)
            seen.pop(mod, None)

    handles = [
        m.register_forward_pre_hook(hook, with_kwargs=True)
        for m in module.modules()
        if m is not module
    ]
    try:
        with torch.no_grad():
            for batch in inputs:
                module(**batch)
    finally:
        for h in handles:
            h.remove()
    return seen


def _forward_takes_only(mod, n_args: int) -> bool:
    params = list(inspect.signature(mod.forward).parameters.values())
    return len(params) == n_args and all(
        p.default is inspect.Parameter.empty and p.kind is p.POSITIONAL_OR_KEYWORD for p in params
    )


@functools.cache
def _static_int8_layer_class():
    import torch

    class StaticInt8Layer(torch.nn.Module):
        """One quantized layer that still answers `.weight` (ViT reads its dtype, for one)."""

        def __init__(self, block):
            super().__init__()
            self.block = block

        @property
        def weight(self):
            layer = next(m for m in self.block.modules() if hasattr(m, "weight"))
            return layer.weight().dequantize() if callable(layer.weight) else layer.weight

        def forward(self, *args):
            return self.block(*args)

    return StaticInt8Layer


def _StaticInt8Layer(block):  # noqa: N802 - builds the class lazily, torch stays out of import
    return _static_int8_layer_class()(block)


def _prepare_blocks(module, calls: dict, qconfig_mapping) -> list[tuple]:
    """Swap every largest traceable block for its FX-prepared (observed) version."""
    import torch

    with quiet_torch_ao():
        from torch.ao.quantization.quantize_fx import prepare_fx

    prepared = []

    def visit(parent):
        for name, child in list(parent.named_children()):
            if not _has_static_layers(child) or isinstance(child, torch.nn.Embedding):
                continue
            args = calls.get(child)
            is_layer = type(child).__name__ in _STATIC_LAYER_TYPES
            observed = None
            if args is not None and (is_layer or _forward_takes_only(child, len(args))):
                traced = torch.nn.Sequential(child) if is_layer else child
                try:
                    with quiet_torch_ao():
                        observed = prepare_fx(traced, qconfig_mapping, example_inputs=args)
                except Exception:  # noqa: BLE001 - not traceable: quantize its children instead
                    observed = None
            if observed is None:
                visit(child)
            elif is_layer:
                wrapper = _StaticInt8Layer(observed)
                setattr(parent, name, wrapper)
                prepared.append((wrapper, "block"))
            else:
                setattr(parent, name, observed)
                prepared.append((parent, name))

    visit(module)
    return prepared


def _quantize_static(module, ctx, params):
    import torch

    inputs = ctx.calibration_inputs()
    if not inputs:
        raise NotApplicable("static-int8 needs calibration inputs and the run gave none")
    conv1d_to_linear(module)
    with quiet_torch_ao():
        from torch.ao.quantization import QConfigMapping, get_default_qconfig
        from torch.ao.quantization.quantize_fx import convert_fx

    engine = "x86" if "x86" in torch.backends.quantized.supported_engines else "qnnpack"
    torch.backends.quantized.engine = engine
    qconfig = get_default_qconfig(engine)
    if params["calibration"] == "minmax":
        from torch.ao.quantization import MinMaxObserver, QConfig

        qconfig = QConfig(activation=MinMaxObserver.with_args(reduce_range=engine == "x86"),
                          weight=qconfig.weight)
    qconfig_mapping = (
        QConfigMapping()
        .set_global(qconfig)
        .set_object_type(torch.nn.Embedding, None)
        .set_object_type(torch.nn.EmbeddingBag, None)
    )
    calls = _tensor_only_calls(module, inputs)
    prepared = _prepare_blocks(module, calls, qconfig_mapping)
    if not prepared:
        raise NotApplicable("static-int8 found no Linear or convolution block it could trace")
    with torch.no_grad(), quiet_torch_ao():
        for batch in inputs:
            module(**batch)
        for parent, name in prepared:
            setattr(parent, name, convert_fx(getattr(parent, name)))
    ctx.extra_result["static_int8_blocks"] = len(prepared)
    return module


STATIC_INT8 = register(
    Technique(
        name="static-int8",
        family="quantization",
        summary="calibrated post-training int8 (weights and activations), FX graph mode per block",
        apply=_quantize_static,
        params=(
            Param("calibration", str, "histogram",
                  "activation ranges: histogram (least quantization error, PyTorch's x86 "
                  "default; about 0.2 s per observed tensor) or minmax (the range seen; fast)",
                  choices=("histogram", "minmax")),
        ),
        devices=("cpu",),
        layers="nn.Linear, Conv1d/2d/3d (conv-bn-relu fused), in blocks that trace",
    )
)

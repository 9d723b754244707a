"""Export to ONNX, quantize with onnxruntime's dynamic int8, run on the CPU execution provider."""

from __future__ import annotations

import logging
import os
import tempfile
import warnings

from energy_console.core.compression import register
from energy_console.core.compression.base import Technique
from energy_console.core.models.base import NotApplicable

# Inputs whose dimension 1 varies with the run's input size (sequence length); pixels vary in 2, 3.
_DYNAMIC_AXES = {
    "input_ids": {0: "batch", 1: "sequence"},
    "attention_mask": {0: "batch", 1: "sequence"},
    "token_type_ids": {0: "batch", 1: "sequence"},
    "pixel_values": {0: "batch", 2: "height", 3: "width"},
}


def _logits_module(module, names: list[str], constants: dict):
    """The model as a function of positional tensors returning logits only (what ONNX exports)."""
    import torch

    class LogitsOnly(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.model = module

        def forward(self, *tensors):
            out = self.model(**dict(zip(names, tensors, strict=True)), **constants)
            return out.logits if hasattr(out, "logits") else out[0]

    return LogitsOnly()


def _onnx_session_module(model_bytes: bytes, input_names: list[str], size_bytes: int):
    import numpy as np
    import onnxruntime as ort
    import torch
    from energy_console.core.models.size import SizeReport

    session = ort.InferenceSession(model_bytes, providers=["CPUExecutionProvider"])

    class OnnxLogits:
        def __init__(self, logits):
            self.logits = logits

        def __getitem__(self, index):
            return (self.logits,)[index]

    class OnnxInt8Model(torch.nn.Module):
        """Runs the onnxruntime session from model kwargs; returns an object with .logits."""

        serialized_size_bytes = size_bytes

        def __init__(self):
            super().__init__()
            self.session = session
            self.input_names = input_names
            self.size_report = _onnx_size_report(model_bytes, size_bytes, SizeReport)

        def forward(self, **kwargs):
            feed = {n: kwargs[n].detach().cpu().numpy() for n in self.input_names}
            feed = {n: v.astype(np.int64) if v.dtype.kind in "iu" else v for n, v in feed.items()}
            (logits,) = self.session.run(None, feed)
            return OnnxLogits(torch.from_numpy(logits))

    return OnnxInt8Model()


def _onnx_size_report(model_bytes: bytes, size_bytes: int, report_type):
    """Parameter counts and dtype mix read from the ONNX initializers."""
    import numpy as np
    import onnx
    from onnx import numpy_helper

    model = onnx.load_from_string(model_bytes)
    params = nonzero = 0
    dtype_bytes: dict[str, int] = {}
    for init in model.graph.initializer:
        array = numpy_helper.to_array(init)
        if array.ndim == 0:
            continue  # scales and zero points
        params += int(array.size)
        nonzero += int(np.count_nonzero(array))
        key = str(array.dtype)
        dtype_bytes[key] = dtype_bytes.get(key, 0) + int(array.nbytes)
    return report_type(size_bytes, params, nonzero, dtype_bytes)


def _export_quantized(module, example: dict) -> bytes:
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic

    names = [n for n, v in example.items() if isinstance(v, torch.Tensor)]
    constants = {n: v for n, v in example.items() if not isinstance(v, torch.Tensor)}
    if "use_cache" in module.forward.__code__.co_varnames:
        constants["use_cache"] = False
    wrapper = _logits_module(module, names, constants).eval()
    with tempfile.TemporaryDirectory(prefix="energy-console-onnx-") as tmp:
        fp32_path = os.path.join(tmp, "model.onnx")
        int8_path = os.path.join(tmp, "model-int8.onnx")
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # tracer warnings about Python control flow
            torch.onnx.export(
                wrapper,
                tuple(example[n] for n in names),
                fp32_path,
                input_names=names,
                output_names=["logits"],
                dynamic_axes={n: _DYNAMIC_AXES[n] for n in names if n in _DYNAMIC_AXES},
                opset_version=17,
                dynamo=False,
            )
        previous = logging.root.manager.disable
        logging.disable(logging.WARNING)  # onnxruntime advises pre-processing on the root logger
        try:
            quantize_dynamic(fp32_path, int8_path, weight_type=QuantType.QInt8)
        finally:
            logging.disable(previous)
        with open(int8_path, "rb") as f:
            return f.read()


def _apply_onnx_int8(module, ctx, params):
    inputs = ctx.calibration_inputs()
    if not inputs:
        raise NotApplicable("onnx-int8 needs an example input to export and the run gave none")
    example = inputs[0]
    try:
        model_bytes = _export_quantized(module, example)
    except Exception as exc:  # noqa: BLE001 - exporter errors vary; the run is skipped with them
        raise NotApplicable(f"onnx-int8 could not export this model to ONNX: {exc}") from exc
    names = [n for n, v in example.items() if hasattr(v, "detach")]
    ctx.extra_result["onnx_size_bytes"] = len(model_bytes)
    ctx.runtime = "onnxruntime"
    ctx.warnings.append(
        "onnx-int8 runs in onnxruntime (CPU execution provider), not in torch: latency and energy "
        "include onnxruntime's own thread pool"
    )
    return _onnx_session_module(model_bytes, names, len(model_bytes))


ONNX_INT8 = register(
    Technique(
        name="onnx-int8",
        family="quantization",
        summary="ONNX export + onnxruntime dynamic int8 quantization, CPU execution provider",
        apply=_apply_onnx_int8,
        devices=("cpu",),
        layers="MatMul/Gemm/Conv/Gather ops of the exported graph (onnxruntime's choice)",
        requires=("onnx", "onnxruntime"),
        extra="onnx",
    )
)

"""The mobile quantization study's variants on ONNX Runtime (CPU execution provider).

TensorFlow Lite's post-training options for a phone, reproduced on the ONNX path:

  onnx-fp32      the exported graph as is: the study's baseline, so the variants below differ
                 from it in quantization only, not in runtime
  onnx-fp16      float16 weights (each weight stored in fp16 with a Cast back to fp32, as
                 TFLite's float16 quantization does on a CPU: storage halves, compute stays fp32)
  onnx-qdq-int8  full-integer int8: static QDQ quantization, uint8 activations (ranges from
                 calibration batches of the run's data: a detection run's dataset images),
                 int8 per-channel weights, MinMax calibration
  onnx-qdq-16x8  TFLite's "16x8": int16 activations (symmetric), int8 per-channel weights

ONNX Runtime runs int8 QDQ graphs with integer kernels (QLinearConv, QLinearMatMul). Few of
its CPU kernels take int16, so a 16x8 graph mostly runs dequantize → fp32 op → quantize: its
accuracy is the 16x8 scheme's, its speed is not what an int16 accelerator would give.
"""

from __future__ import annotations

import logging
import os
import tempfile
import warnings
from typing import Any

from energy_console.core.compression import register
from energy_console.core.compression.base import Technique
from energy_console.core.compression.onnx_int8 import _DYNAMIC_AXES, _onnx_size_report
from energy_console.core.models.base import NotApplicable

OUTPUT_NAMES = ("logits", "pred_boxes")  # kept where the model returns them, in this order
OPSET = 17  # 16x8 needs 21: onnxruntime's quantizer lifts the graph to it


def _outputs_module(module, names: list[str], constants: dict[str, Any], outputs: list[str]):
    import torch

    class NamedOutputs(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.model = module

        def forward(self, *tensors):
            out = self.model(**dict(zip(names, tensors, strict=True)), **constants)
            return tuple(getattr(out, name) for name in outputs)

    return NamedOutputs()


def export_fp32(module, example: dict[str, Any], folder: str) -> tuple[str, list[str], list[str]]:
    """The module exported to `folder`/model.onnx: (path, input names, output names)."""
    import torch

    names = [n for n, v in example.items() if isinstance(v, torch.Tensor)]
    constants = {n: v for n, v in example.items() if not isinstance(v, torch.Tensor)}
    with torch.no_grad():
        sample = module(**example)
    outputs = [n for n in OUTPUT_NAMES if getattr(sample, n, None) is not None]
    if not outputs:
        raise NotApplicable("the onnx-* techniques export models whose output has logits (and "
                            "pred_boxes for detectors); this one has neither")
    path = os.path.join(folder, "model.onnx")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer warnings about Python control flow
        torch.onnx.export(
            _outputs_module(module, names, constants, outputs).eval(),
            tuple(example[n] for n in names), path, input_names=names, output_names=outputs,
            dynamic_axes={n: _DYNAMIC_AXES[n] for n in names if n in _DYNAMIC_AXES},
            opset_version=OPSET, dynamo=False,
        )
    return path, names, outputs


def check_export(path: str, module, example: dict[str, Any], names: list[str],
                 outputs: list[str]) -> None:
    """NotApplicable unless the exported fp32 graph gives the torch model's outputs on the
    example; where it does not (the tiny RT-DETR here: tracing can turn data-dependent steps
    into constants) every variant would inherit the error, so none runs."""
    import numpy as np
    import onnxruntime as ort
    import torch

    with open(path, "rb") as f:
        session = ort.InferenceSession(f.read(), providers=["CPUExecutionProvider"])
    feed = {n: example[n].detach().cpu().numpy() for n in names}
    got = session.run(None, feed)
    with torch.no_grad():
        expected = module(**example)
    for name, value in zip(outputs, got, strict=True):
        want = getattr(expected, name).detach().float().cpu().numpy()
        if value.shape != want.shape or not np.allclose(value, want, rtol=1e-3, atol=1e-3):
            worst = float(np.abs(value - want).max()) if value.shape == want.shape else None
            raise NotApplicable(
                f"the ONNX export of this model computes other {name} than torch (max |Δ| "
                f"{worst if worst is None else f'{worst:.3g}'}) on the same input: the export is "
                "wrong for this model (tracing may have turned a data-dependent step into a "
                "constant), so the onnx-* variants cannot run it")


def fp16_weights(source: str, target: str) -> None:
    """Every float32 weight of 2+ dimensions stored as float16, cast back to float32 where used."""
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load(source)
    graph = model.graph
    casts = []
    for init in graph.initializer:
        if init.data_type != onnx.TensorProto.FLOAT or len(init.dims) < 2:
            continue
        array = numpy_helper.to_array(init)
        name = init.name
        init.CopyFrom(numpy_helper.from_array(array.astype("float16"), f"{name}__fp16"))
        casts.append(helper.make_node("Cast", [f"{name}__fp16"], [name], f"{name}__to_fp32",
                                      to=onnx.TensorProto.FLOAT))
    nodes = casts + list(graph.node)  # the casts first: the graph stays in topological order
    del graph.node[:]
    graph.node.extend(nodes)
    onnx.save(model, target)


def quantize_qdq(source: str, target: str, calibration: list[dict[str, Any]], names: list[str],
                 activations: str) -> None:
    """Static QDQ quantization: int8 weights per channel, `activations` uint8 or int16."""
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    feeds = [{n: batch[n].detach().cpu().float().numpy() if batch[n].is_floating_point()
              else batch[n].detach().cpu().numpy() for n in names} for batch in calibration]

    class Batches(CalibrationDataReader):
        def __init__(self):
            self.feeds = iter(feeds)

        def get_next(self):
            return next(self.feeds, None)

    int16 = activations == "int16"
    previous = logging.root.manager.disable
    logging.disable(logging.WARNING)  # advice on pre-processing and the opset, on the root logger
    try:
        quantize_static(
            source, target, Batches(), quant_format=QuantFormat.QDQ, per_channel=True,
            activation_type=QuantType.QInt16 if int16 else QuantType.QUInt8,
            weight_type=QuantType.QInt8, calibrate_method=CalibrationMethod.MinMax,
            extra_options={"ActivationSymmetric": int16},
        )
    finally:
        logging.disable(previous)


def session_module(model_bytes: bytes, input_names: list[str], output_names: list[str]):
    """An onnxruntime session as a torch module: model kwargs in, an object with the named
    outputs (torch tensors) as attributes out."""
    import numpy as np
    import onnxruntime as ort
    import torch
    from energy_console.core.models.size import SizeReport

    options = ort.SessionOptions()
    # the threads torch was given (protocol.threads), so torch and onnx-* runs compare fairly
    options.intra_op_num_threads = torch.get_num_threads()
    session = ort.InferenceSession(model_bytes, options, providers=["CPUExecutionProvider"])

    class OnnxOutputs:
        def __init__(self, values):
            self.values = values
            for name, value in zip(output_names, values, strict=True):
                setattr(self, name, value)

        def __getitem__(self, index):
            return self.values[index]

    class OnnxSessionModel(torch.nn.Module):
        serialized_size_bytes = len(model_bytes)

        def __init__(self):
            super().__init__()
            self.size_report = _onnx_size_report(model_bytes, len(model_bytes), SizeReport)

        def forward(self, **kwargs):
            feed = {n: kwargs[n].detach().cpu().numpy() for n in input_names}
            feed = {n: v.astype(np.int64) if v.dtype.kind in "iu" else v.astype(np.float32)
                    for n, v in feed.items()}
            return OnnxOutputs(tuple(torch.from_numpy(v) for v in session.run(None, feed)))

    return OnnxSessionModel()


def _apply(variant: str):
    def apply(module, ctx, params):
        if ctx.loaded.detection_head == "torchvision":
            raise NotApplicable(
                f"onnx-{variant} exports detectors with (logits, pred_boxes) outputs; a "
                "torchvision detector takes a list of images and runs NMS inside its graph")
        batches = ctx.calibration_inputs()
        if not batches:
            raise NotApplicable(f"onnx-{variant} needs an example input and the run gave none")
        with tempfile.TemporaryDirectory(prefix="energy-console-onnx-") as tmp:
            try:
                path, names, outputs = export_fp32(module, batches[0], tmp)
                check_export(path, module, batches[0], names, outputs)
            except NotApplicable:
                raise
            except Exception as exc:  # noqa: BLE001 - exporter errors vary; the run is skipped
                raise NotApplicable(f"onnx-{variant} could not export this model to ONNX: "
                                    f"{exc}") from exc
            target = os.path.join(tmp, f"model-{variant}.onnx")
            try:
                if variant == "fp32":
                    target = path
                elif variant == "fp16":
                    fp16_weights(path, target)
                else:
                    quantize_qdq(path, target, batches, names,
                                 "int16" if variant == "qdq-16x8" else "uint8")
                with open(target, "rb") as f:
                    model_bytes = f.read()
                wrapped = session_module(model_bytes, names, outputs)
            except Exception as exc:  # noqa: BLE001 - quantizer/runtime refusals: skip with them
                raise NotApplicable(f"onnx-{variant}: onnxruntime could not quantize or run "
                                    f"this model: {type(exc).__name__}: {exc}") from exc
        ctx.runtime = "onnxruntime"
        ctx.extra_result["onnx_size_bytes"] = len(model_bytes)
        ctx.extra_result["onnx_calibration_batches"] = len(batches) if "qdq" in variant else 0
        ctx.warnings.append(f"onnx-{variant} runs in onnxruntime (CPU execution provider), not "
                            "in torch: compare it with onnx-fp32, which differs in "
                            "quantization only")
        return wrapped

    return apply


def _technique(variant: str, summary: str, layers: str) -> Technique:
    return register(Technique(
        name=f"onnx-{variant}", family="quantization" if variant != "fp32" else "precision",
        summary=summary, apply=_apply(variant), devices=("cpu",), layers=layers,
        requires=("onnx", "onnxruntime"), extra="onnx"))


ONNX_FP32 = _technique("fp32", "ONNX export, fp32, onnxruntime CPU: the baseline of the onnx-* "
                       "variants", "none (export only)")
ONNX_FP16 = _technique("fp16", "ONNX export, float16 weights cast to fp32 at use (TFLite's "
                       "float16 quantization)", "initializers of 2+ dimensions")
ONNX_QDQ_INT8 = _technique("qdq-int8", "ONNX static QDQ full-integer int8 (uint8 activations "
                           "calibrated on the run's data, int8 per-channel weights)",
                           "Conv/MatMul/Gemm and the ops between them (onnxruntime's choice)")
ONNX_QDQ_16X8 = _technique("qdq-16x8", "ONNX static QDQ 16x8: int16 activations, int8 "
                           "per-channel weights (TFLite's 16x8)",
                           "Conv/MatMul/Gemm and the ops between them (onnxruntime's choice)")

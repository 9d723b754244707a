"""The mobile quantization study's variants on ONNX Runtime (CPU execution provider).

TensorFlow Lite's post-training options for a phone, reproduced on the ONNX path, each from the
model's ONNX graph: an ONNX file's own (the `onnx:` source), or the torch model exported
(core.compression.onnx_graph):

  onnx-fp32      the graph as is: the study's baseline, so the variants below differ
                 from it in quantization only, not in runtime
  onnx-fp16      float16 weights (each weight stored in fp16 with a Cast back to fp32, as
                 TFLite's float16 quantization does on a CPU: storage halves, compute stays fp32)
  onnx-qdq-int8  full-integer int8: static QDQ quantization, uint8 activations (ranges from
                 calibration batches of the run's data: a detection run's dataset images),
                 int8 per-channel weights, MinMax calibration
  onnx-qdq-16x8  TFLite's "16x8": int16 activations (symmetric), int8 per-channel weights

The calibration ranges are read in one pass (minmax_ranges) and handed to onnxruntime's quantizer
as its calibration cache: its own MinMax calibrator looks through every node for each tensor it
calibrates, time quadratic in the graph's size (minutes on a BERT-base graph).

ONNX Runtime runs int8 QDQ graphs with integer kernels (QLinearConv, QLinearMatMul). Few of
its CPU kernels take int16, so a 16x8 graph mostly runs dequantize → fp32 op → quantize: its
accuracy is the 16x8 scheme's, its speed is not what an int16 accelerator would give.
"""

from __future__ import annotations

import logging
import os
import tempfile
from typing import Any

from energy_console.core.compression import register
from energy_console.core.compression.base import Technique
from energy_console.core.compression.onnx_graph import graph_model, source_graph
from energy_console.core.models.base import NotApplicable


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


def quantized_op_types() -> set[str]:
    """The op types onnxruntime's static quantizer handles by default: the ones calibrated."""
    from onnxruntime.quantization.registry import QDQRegistry, QLinearOpsRegistry

    return set(QLinearOpsRegistry) | set(QDQRegistry)


def minmax_ranges(source: str, feeds: list[dict[str, Any]]) -> Any:
    """onnxruntime's MinMax calibration (a TensorsData) of the graph at `source` over `feeds`, in
    one pass: every float input and output of the nodes onnxruntime quantizes (initializers
    aside) becomes a graph output once, and its min and max over each feed are taken in numpy, as
    onnxruntime's ReduceMin and ReduceMax would give them (the same values, dtypes and shapes:
    tests/test_onnx_calibration.py)."""
    from pathlib import Path

    import numpy as np
    import onnx
    import onnxruntime
    from onnxruntime.quantization import CalibrationMethod, TensorsData
    from onnxruntime.quantization.quant_utils import load_model_with_shape_infer

    model = load_model_with_shape_infer(Path(source))  # the value types the calibrator reads
    graph = model.graph
    typed = {v.name: v for v in (*graph.value_info, *graph.output, *graph.input)}
    initializers = {i.name for i in graph.initializer}
    quantized = quantized_op_types()
    floats = (onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16)
    used = dict.fromkeys(name for node in graph.node if node.op_type in quantized
                         for name in (*node.input, *node.output))
    tensors = [name for name in used if name in typed and name not in initializers
               and typed[name].type.HasField("tensor_type")
               and typed[name].type.tensor_type.elem_type in floats]
    outputs = {o.name for o in graph.output}
    graph.output.extend(typed[name] for name in tensors if name not in outputs)
    options = onnxruntime.SessionOptions()  # the graph's own ops, unfused, as the calibrator
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = onnxruntime.InferenceSession(model.SerializeToString(), options,
                                           providers=["CPUExecutionProvider"])
    lows: dict[str, list[Any]] = {name: [] for name in tensors}
    highs: dict[str, list[Any]] = {name: [] for name in tensors}
    for feed in feeds:
        for name, value in zip(tensors, session.run(tensors, feed), strict=True):
            if value.size:  # an empty tensor has no range
                lows[name].append(value.min().reshape(1))
                highs[name].append(value.max().reshape(1))
    return TensorsData(CalibrationMethod.MinMax, {
        name: (np.nanmin(lows[name], axis=0), np.nanmax(highs[name], axis=0))
        for name in tensors if lows[name]})


def quantize_qdq(source: str, target: str, feeds: list[dict[str, Any]],
                 activations: str) -> None:
    """Static QDQ quantization: int8 weights per channel, `activations` uint8 or int16,
    ranges from the calibration `feeds` (minmax_ranges)."""
    from onnxruntime.quantization import (
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
        save_tensors_data,
    )

    int16 = activations == "int16"
    ranges = os.path.join(os.path.dirname(target), "calibration.json")
    save_tensors_data(minmax_ranges(source, feeds), ranges)
    previous = logging.root.manager.disable
    logging.disable(logging.WARNING)  # advice on pre-processing and the opset, on the root logger
    try:
        quantize_static(
            source, target, quant_format=QuantFormat.QDQ, per_channel=True,
            activation_type=QuantType.QInt16 if int16 else QuantType.QUInt8,
            weight_type=QuantType.QInt8, calibrate_method=CalibrationMethod.MinMax,
            extra_options={"ActivationSymmetric": int16}, calibration_cache_path=ranges,
        )
    finally:
        logging.disable(previous)


def _apply(variant: str):
    technique = f"onnx-{variant}"

    def apply(module, ctx, params):
        with tempfile.TemporaryDirectory(prefix="energy-console-onnx-") as tmp:
            source = source_graph(technique, module, ctx, tmp)
            target = os.path.join(tmp, f"model-{variant}.onnx")
            try:
                if variant == "fp32":
                    target = source.path
                elif variant == "fp16":
                    fp16_weights(source.path, target)
                else:
                    quantize_qdq(source.path, target, source.feeds,
                                 "int16" if variant == "qdq-16x8" else "uint8")
                with open(target, "rb") as f:
                    graph = f.read()
                wrapped = graph_model(graph, source, ctx, technique)
            except Exception as exc:  # noqa: BLE001 - quantizer/runtime refusals: skip with them
                raise NotApplicable(f"{technique}: onnxruntime could not quantize or run "
                                    f"this model: {type(exc).__name__}: {exc}") from exc
        ctx.extra_result["onnx_calibration_batches"] = len(source.feeds) if "qdq" in variant \
            else 0
        return wrapped

    return apply


def _technique(variant: str, summary: str, layers: str) -> Technique:
    return register(Technique(
        name=f"onnx-{variant}", family="quantization" if variant != "fp32" else "precision",
        summary=summary, apply=_apply(variant), devices=("cpu",), layers=layers,
        requires=("onnx", "onnxruntime"), extra="onnx", runtimes=("torch", "onnxruntime")))


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

"""ONNX Runtime's dynamic int8 quantization of the model's graph, run on the CPU execution
provider: the graph of an ONNX file, or the torch model exported (core.compression.onnx_graph)."""

from __future__ import annotations

import logging
import os
import tempfile

from energy_console.core.compression import register
from energy_console.core.compression.base import Technique
from energy_console.core.compression.onnx_graph import graph_model, source_graph
from energy_console.core.models.base import NotApplicable


def _apply_onnx_int8(module, ctx, params):
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with tempfile.TemporaryDirectory(prefix="energy-console-onnx-") as tmp:
        source = source_graph("onnx-int8", module, ctx, tmp)
        target = os.path.join(tmp, "model-int8.onnx")
        previous = logging.root.manager.disable
        logging.disable(logging.WARNING)  # onnxruntime advises pre-processing on the root logger
        try:
            quantize_dynamic(source.path, target, weight_type=QuantType.QInt8)
            with open(target, "rb") as f:
                graph = f.read()
        except Exception as exc:  # noqa: BLE001 - quantizer refusals: the run is skipped
            raise NotApplicable(f"onnx-int8: onnxruntime could not quantize this model: "
                                f"{type(exc).__name__}: {exc}") from exc
        finally:
            logging.disable(previous)
    return graph_model(graph, source, ctx, "onnx-int8")


ONNX_INT8 = register(
    Technique(
        name="onnx-int8",
        family="quantization",
        summary="onnxruntime dynamic int8 quantization of the ONNX graph, CPU execution provider",
        apply=_apply_onnx_int8,
        devices=("cpu",),
        layers="MatMul/Gemm/Conv/Gather ops of the graph (onnxruntime's choice)",
        requires=("onnx", "onnxruntime"),
        extra="onnx",
        runtimes=("torch", "onnxruntime"),
    )
)

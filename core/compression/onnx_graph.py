"""The graph the onnx-* techniques work on: an ONNX file's own graph (a model of the `onnx:`
source), or the torch model exported to ONNX here (torch.onnx.export, opset 17).

optimum's exporters (which know each transformers architecture's inputs and a decoder's past
key values) are not used: their only release (optimum-onnx 0.1.0) needs transformers < 4.58 and
does not import with transformers 5, so the export stays this hand-written one, which exports
a model's logits (and pred_boxes for detectors), without a decoder's cache.
"""

from __future__ import annotations

import inspect
import os
import warnings
from dataclasses import dataclass
from typing import Any

from energy_console.core.models.base import NotApplicable

OUTPUT_NAMES = ("logits", "pred_boxes")  # kept where the model returns them, in this order
OPSET = 17  # 16x8 needs 21: onnxruntime's quantizer lifts the graph to it
# Inputs whose dimension 1 varies with the run's input size (sequence length); pixels vary in 2, 3.
DYNAMIC_AXES = {
    "input_ids": {0: "batch", 1: "sequence"},
    "attention_mask": {0: "batch", 1: "sequence"},
    "token_type_ids": {0: "batch", 1: "sequence"},
    "pixel_values": {0: "batch", 2: "height", 3: "width"},
}


@dataclass(frozen=True)
class SourceGraph:
    """The fp32 graph a technique starts from, and what running it needs."""

    path: str  # model.onnx in the technique's temporary folder
    inputs: tuple  # GraphInput, one per graph input
    outputs: tuple[str, ...]
    feeds: list[dict[str, Any]]  # the calibration batches as the graph's feeds


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
    if "use_cache" in inspect.signature(module.forward).parameters:
        constants["use_cache"] = False  # a decoder's logits only: no cache in the graph
    with torch.no_grad():
        sample = module(**{**example, **constants})
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
            dynamic_axes={n: DYNAMIC_AXES[n] for n in names if n in DYNAMIC_AXES},
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


def source_graph(technique: str, module, ctx, folder: str) -> SourceGraph:
    """The graph `technique` starts from: the loaded ONNX file's, or the torch model exported
    (and checked against torch); NotApplicable says why there is none."""
    from energy_console.core.models.onnx_session import GraphInput, OnnxGraphModule, graph_feed

    if ctx.loaded.detection_head == "torchvision":
        raise NotApplicable(
            f"{technique} exports detectors with (logits, pred_boxes) outputs; a torchvision "
            "detector takes a list of images and runs NMS inside its graph")
    batches = ctx.calibration_inputs()
    if not batches:
        raise NotApplicable(f"{technique} needs an example input and the run gave none")
    if isinstance(module, OnnxGraphModule):  # a model of the onnx: source: its own graph
        path = os.path.join(folder, "model.onnx")
        with open(path, "wb") as f:
            f.write(module.graph)
        return SourceGraph(path, module.inputs, module.outputs,
                           [module.feed(b) for b in batches])
    try:
        path, names, outputs = export_fp32(module, batches[0], folder)
        check_export(path, module, batches[0], names, outputs)
    except NotApplicable:
        raise
    except Exception as exc:  # noqa: BLE001 - exporter errors vary; the run is skipped with them
        raise NotApplicable(f"{technique} could not export this model to ONNX: {exc}") from exc
    inputs = tuple(GraphInput(n, n, integer=not batches[0][n].is_floating_point())
                   for n in names)
    return SourceGraph(path, inputs, tuple(outputs), [graph_feed(inputs, b) for b in batches])


def graph_model(graph: bytes, source: SourceGraph, ctx, technique: str):
    """The variant: `graph` in an onnxruntime session, and what the run records about it."""
    from energy_console.core.models.onnx_session import OnnxGraphModule

    wrapped = OnnxGraphModule(graph, source.inputs, source.outputs)
    ctx.runtime = "onnxruntime"
    ctx.extra_result["onnx_size_bytes"] = len(graph)
    ctx.warnings.append(f"{technique} runs in onnxruntime (CPU execution provider), not in "
                        "torch: compare it with onnx-fp32, which differs in quantization only")
    return wrapped

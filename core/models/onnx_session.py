"""An ONNX graph run by ONNX Runtime (CPU execution provider), as a torch module.

Model kwargs go in under the names a transformers model takes (pixel_values, input_ids, ...),
each bound to one input of the graph (transposed to channels-last where the graph is, as Keras
and TFLite graphs are); an object with the graph's outputs as torch tensors comes out. The
`onnx:` source loads a file into one; the onnx-* techniques put their graphs in one
(core.compression.onnx_graph). Imported by those only: it imports torch and onnxruntime.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from energy_console.core.models.size import SizeReport


@dataclass(frozen=True)
class GraphInput:
    kwarg: str  # the model kwarg it is fed from
    name: str  # the graph's input
    integer: bool = False  # token ids (int64); else float32
    channels_last: bool = False  # NHWC: pixels (N, C, H, W) are transposed to (N, H, W, C)


class GraphOutputs:
    """The graph's outputs by name as attributes (and by position); `logits` names the first
    output where none is called so, the output every classifier's quality reads."""

    def __init__(self, names: tuple[str, ...], values: tuple[Any, ...]):
        self.values = values
        for name, value in zip(names, values, strict=True):
            setattr(self, name, value)
        if "logits" not in names:
            self.logits = values[0]

    def __getitem__(self, index):
        return self.values[index]


class OnnxGraphModule(torch.nn.Module):
    """One onnxruntime session; `graph` is the serialised model it runs."""

    def __init__(self, graph: bytes, inputs: tuple[GraphInput, ...], outputs: tuple[str, ...]):
        import onnxruntime as ort

        super().__init__()
        options = ort.SessionOptions()
        # the threads torch was given (protocol.threads), so torch and ONNX runs compare fairly
        options.intra_op_num_threads = torch.get_num_threads()
        self.session = ort.InferenceSession(graph, options, providers=["CPUExecutionProvider"])
        self.graph, self.inputs, self.outputs = graph, inputs, outputs
        self.serialized_size_bytes = len(graph)
        self.size_report = graph_size_report(graph)

    def feed(self, kwargs: dict[str, Any]) -> dict[str, np.ndarray]:
        return graph_feed(self.inputs, kwargs)

    def with_graph(self, graph: bytes) -> OnnxGraphModule:
        """Another graph with the same inputs and outputs (a quantized one)."""
        return OnnxGraphModule(graph, self.inputs, self.outputs)

    def forward(self, **kwargs) -> GraphOutputs:
        values = self.session.run(list(self.outputs), self.feed(kwargs))
        return GraphOutputs(self.outputs, tuple(torch.from_numpy(v) for v in values))


def graph_feed(inputs: tuple[GraphInput, ...], kwargs: dict[str, Any]) -> dict[str, np.ndarray]:
    """A session's feed for model kwargs (what the graph's quantizers calibrate on too)."""
    feed = {}
    for bound in inputs:
        value = kwargs[bound.kwarg].detach().cpu()
        if bound.channels_last:
            value = value.permute(0, 2, 3, 1)
        feed[bound.name] = value.float().numpy() if not bound.integer else value.numpy().astype(
            np.int64)
    return feed


def graph_size_report(graph: bytes) -> SizeReport:
    """Parameter counts and dtype mix read from the graph's initializers (scalars, such as
    scales and zero points, left out)."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load_from_string(graph)
    params = nonzero = 0
    dtype_bytes: dict[str, int] = {}
    for init in model.graph.initializer:
        array = numpy_helper.to_array(init)
        if array.ndim == 0:
            continue
        params += int(array.size)
        nonzero += int(np.count_nonzero(array))
        key = str(array.dtype)
        dtype_bytes[key] = dtype_bytes.get(key, 0) + int(array.nbytes)
    return SizeReport(len(graph), params, nonzero, dtype_bytes)

"""ONNX files: `onnx: model.onnx`, run by ONNX Runtime (CPU execution provider).

    - onnx: exported/resnet50.onnx      # relative to the profile's folder
      task: image-classification        # optional: read from the graph where it can be
      preprocessing: {mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225]}
      labels: [cat, dog, ...]           # optional class names
      vocab_size: 30522                 # token models whose graph does not tell it

The graph's inputs and outputs say how to feed it: a float input of rank 4 takes images (NCHW,
or NHWC as Keras and TFLite graphs do: transposed on the way in), integer inputs take token ids
(input_ids, attention_mask, token_type_ids by name); a fixed height and width fix the run's
resolution. Its task: object-detection where an output is named pred_boxes, causal-lm where a
token model's output has three dimensions, text-classification for other token models,
image-classification for images. Models of other frameworks come this way: a Keras model
through tf2onnx, a TFLite file through tflite2onnx.

Only the graph techniques apply (onnx-fp32, onnx-int8, onnx-fp16, onnx-qdq-int8, onnx-qdq-16x8:
Technique.runtimes); the others are skipped with the reason.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from energy_console.core.models.base import (
    ONNX_PACKAGE,
    ImagePreprocessing,
    LoadedModel,
    ModelLoadError,
    NotApplicable,
)
from energy_console.core.models.factory import check_options
from energy_console.core.spec.tasks import IMAGE_TASKS, TASKS

MAX_GRAPH_BYTES = 2 << 30  # protobuf's limit: larger graphs keep their weights as external data
TOKEN_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
INSTALL = "pip install 'energy-console[onnx]'"


@dataclass(frozen=True)
class TensorInfo:
    name: str
    integer: bool
    dims: tuple[int | str | None, ...]  # a fixed size, a symbolic name, or unknown


@dataclass(frozen=True)
class GraphConfig:
    """What the graph tells of the model (LoadedModel.config)."""

    num_labels: int
    num_channels: int = 3
    vocab_size: int | None = None


def tensor_infos(values) -> list[TensorInfo]:
    """Name, integer-or-float and dims of graph inputs or outputs (onnx ValueInfoProto)."""
    import onnx

    integers = {onnx.TensorProto.INT64, onnx.TensorProto.INT32, onnx.TensorProto.INT8,
                onnx.TensorProto.UINT8, onnx.TensorProto.BOOL}
    infos = []
    for value in values:
        tensor = value.type.tensor_type
        dims = tuple(d.dim_value if d.HasField("dim_value") else (d.dim_param or None)
                     for d in tensor.shape.dim)
        infos.append(TensorInfo(value.name, tensor.elem_type in integers, dims))
    return infos


def graph_task(inputs: list[TensorInfo], outputs: list[TensorInfo]) -> str | None:
    """The task the graph's signature tells, or None."""
    if any(o.name == "pred_boxes" for o in outputs):
        return "object-detection"
    if any(i.integer for i in inputs):
        return "causal-lm" if outputs and len(outputs[0].dims) == 3 else "text-classification"
    if any(len(i.dims) == 4 for i in inputs):
        return "image-classification"
    return None


def image_binding(inputs: list[TensorInfo]):
    """(GraphInput for pixel_values, channels, fixed size or None) of an image graph."""
    from energy_console.core.models.onnx_session import GraphInput

    pixels = next((i for i in inputs if not i.integer and len(i.dims) == 4), None)
    if pixels is None:
        raise ModelLoadError("the graph has no float input of rank 4 (images); set `task:` to "
                             "the model's task")
    channels_last = pixels.dims[3] in (1, 3) and pixels.dims[1] not in (1, 3)
    channels = pixels.dims[3] if channels_last else pixels.dims[1]
    height = pixels.dims[1] if channels_last else pixels.dims[2]
    return (GraphInput("pixel_values", pixels.name, channels_last=channels_last),
            channels if isinstance(channels, int) and channels else 3,
            height if isinstance(height, int) and height else None)


def token_bindings(inputs: list[TensorInfo]):
    """GraphInputs of a token graph: input_ids, attention_mask, token_type_ids by name; a single
    other integer input is the token ids."""
    from energy_console.core.models.onnx_session import GraphInput

    named = [GraphInput(i.name, i.name, integer=True) for i in inputs if i.name in TOKEN_INPUTS]
    others = [i for i in inputs if i.name not in TOKEN_INPUTS]
    if not named and len(others) == 1 and others[0].integer:
        return [GraphInput("input_ids", others[0].name, integer=True)]
    if others:
        raise ModelLoadError(f"the graph takes inputs energy-console cannot feed: "
                             f"{', '.join(i.name for i in others)} (token models take "
                             f"{', '.join(TOKEN_INPUTS)})")
    return named


def vocabulary_size(model, token_input: str) -> int | None:
    """Rows of the embedding table the token ids index (a Gather on an initializer)."""
    tables = {init.name: init for init in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type == "Gather" and node.input[1] == token_input and node.input[0] in tables:
            return int(tables[node.input[0]].dims[0])
    return None


class OnnxFileSource:
    key = "onnx"
    option_keys: tuple[str, ...] = ("preprocessing", "vocab_size", "labels")

    def claims(self, text: str) -> bool:
        return text.lower().endswith(".onnx")

    def check_ref(self, ref: str) -> str | None:
        return None  # relative to the profile's folder: checked when the run loads it

    def check_options(self, options: dict[str, Any]) -> tuple[str, str] | None:
        return check_options(options)

    def loading_from(self, entry) -> str:
        return "from its ONNX file"

    def preload(self, entry) -> tuple[str, ...]:
        return (ONNX_PACKAGE,)  # onnxruntime runs the graph: no transformers

    def known_task(self, ref: str) -> str | None:
        return None

    def preflight(self, entry) -> str | None:
        missing = [m for m in ("onnx", "onnxruntime") if importlib.util.find_spec(m) is None]
        if missing:
            return f"ONNX file {entry.ref!r} needs {', '.join(missing)}: {INSTALL}"
        path = Path(entry.resolved_ref)
        if not path.is_file():
            return (f"ONNX file {str(path)!r} does not exist; fix `onnx:` in the profile "
                    "(relative paths are read from the profile's folder)")
        if path.stat().st_size > MAX_GRAPH_BYTES:
            return f"ONNX file {str(path)!r} is over 2 GiB; energy-console loads single files"
        return None

    def config_task(self, entry) -> str | None:
        """The task the graph's signature tells (its weights are not read), or None."""
        if self.preflight(entry):
            return None
        try:
            import onnx

            model = onnx.load(entry.resolved_ref, load_external_data=False)
        except Exception:  # not an ONNX model: loading says why
            return None
        initializers = {init.name for init in model.graph.initializer}
        inputs = [i for i in tensor_infos(model.graph.input) if i.name not in initializers]
        return graph_task(inputs, tensor_infos(model.graph.output))

    def load(self, entry, device: str) -> LoadedModel:
        import onnx
        from energy_console.core.models.demo import image_input_factory, text_input_factory
        from energy_console.core.models.onnx_session import OnnxGraphModule

        reason = self.preflight(entry)
        if reason:
            raise ModelLoadError(reason)
        if device != "cpu":
            raise NotApplicable(f"ONNX file {entry.ref!r} runs on onnxruntime's CPU execution "
                                "provider; use device: cpu")
        label = f"ONNX file {entry.ref!r}"
        graph = Path(entry.resolved_ref).read_bytes()
        try:
            model = onnx.load_from_string(graph)
        except Exception as exc:  # a file that is not an ONNX model
            raise ModelLoadError(f"{label} is not an ONNX model ({type(exc).__name__}: {exc})") \
                from exc
        if any(init.data_location == onnx.TensorProto.EXTERNAL
               for init in model.graph.initializer):
            raise ModelLoadError(f"{label} keeps its weights in external data files; save it as "
                                 "one file (onnx.save(model, path, save_as_external_data=False))")
        inputs, outputs = tensor_infos(model.graph.input), tensor_infos(model.graph.output)
        initializers = {init.name for init in model.graph.initializer}
        inputs = [i for i in inputs if i.name not in initializers]  # old exports list weights
        task = entry.task or graph_task(inputs, outputs)
        if task not in TASKS:
            raise ModelLoadError(f"{label}: cannot tell its task from its graph; add `task:` "
                                 f"with one of {', '.join(TASKS)}")
        options = entry.options or {}
        last = outputs[0].dims[-1] if outputs and outputs[0].dims else None
        try:
            if task in IMAGE_TASKS:
                binding, channels, size = image_binding(inputs)
                bindings = [binding]
                make_inputs = image_input_factory(channels, device)
                if size:
                    from energy_console.core.models.factory import fixed_size_inputs

                    make_inputs = fixed_size_inputs(make_inputs, size, entry.ref, "ONNX file")
                config = GraphConfig(last if isinstance(last, int) else 0, channels)
            else:
                bindings = token_bindings(inputs)
                ids = next(b.name for b in bindings if b.kwarg == "input_ids")
                vocab = options.get("vocab_size") or vocabulary_size(model, ids)
                if not vocab:
                    raise ModelLoadError("the graph does not tell its vocabulary size; add "
                                         "`vocab_size:`")
                make_inputs = _token_inputs(text_input_factory(vocab, device), bindings)
                config = GraphConfig(last if isinstance(last, int) else 0, vocab_size=vocab)
        except ModelLoadError as exc:
            raise ModelLoadError(f"{label}: {exc}") from None
        names = tuple(o.name for o in outputs)
        if task == "object-detection" and not {"logits", "pred_boxes"} <= set(names):
            raise ModelLoadError(f"{label}: an object detector's graph must output logits and "
                                 "pred_boxes (DETR-style)")
        preprocessing = options.get("preprocessing") or {}
        processor = ImagePreprocessing(
            tuple(preprocessing.get("mean", (0.5,) * config.num_channels)),
            tuple(preprocessing.get("std", (0.5,) * config.num_channels)))
        return LoadedModel(
            module=OnnxGraphModule(graph, tuple(bindings), names), task=task,
            make_inputs=make_inputs, config=config,
            image_processor=processor if task in IMAGE_TASKS else None,
            label_names=options.get("labels"), runtime="onnxruntime",
            detection_head="softmax" if task == "object-detection" else None)


def _token_inputs(make_inputs, bindings):
    """Token inputs with only the kwargs the graph takes (and token_type_ids of zeros)."""
    kwargs = {b.kwarg for b in bindings}

    def made(batch_size: int, seq_len: int, seed: int = 0) -> dict:
        import torch

        inputs = make_inputs(batch_size, seq_len, seed)
        if "token_type_ids" in kwargs:
            inputs["token_type_ids"] = torch.zeros_like(inputs["input_ids"])
        return {k: v for k, v in inputs.items() if k in kwargs}

    return made


SOURCE = OnnxFileSource()

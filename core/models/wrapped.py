"""A plain torch model made to run like a transformers one: model kwargs in (pixel_values or
input_ids), an object with .logits out. The factory, torchvision and timm sources wrap their
models in it; the techniques reach the model inside through the module tree. Imported by those
sources' load only: it imports torch."""

from __future__ import annotations

from typing import Any

import torch


class LogitsOutput:
    """The model's output: .logits, and the same as item 0."""

    def __init__(self, logits):
        self.logits = logits

    def __getitem__(self, index):
        return (self.logits,)[index]


class PositionalModel(torch.nn.Module):
    """Calls `model` with the one input it takes, positionally; keeps its logits (a tensor, an
    object with .logits, or a tuple's first item)."""

    def __init__(self, model: torch.nn.Module, input_name: str):
        super().__init__()
        self.model = model
        self.input_name = input_name

    def forward(self, **inputs: Any) -> LogitsOutput:
        out = self.model(inputs[self.input_name])
        if hasattr(out, "logits"):
            out = out.logits
        elif isinstance(out, tuple | list):
            out = out[0]
        return LogitsOutput(out)

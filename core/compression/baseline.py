"""The uncompressed model every other run is compared against."""

from __future__ import annotations

from energy_console.core.compression import register
from energy_console.core.compression.base import Technique


def _identity(module, ctx, params):
    return module


BASELINE = register(
    Technique(
        name="baseline",
        family="baseline",
        summary="the model as loaded (fp32), the reference for every delta",
        apply=_identity,
        runtimes=("torch", "onnxruntime"),
    )
)

"""Model sources: built-in demo models, Hugging Face hub ids, local folders, your own code (a
factory callable and a state dict), ONNX files, torchvision and timm models."""

from __future__ import annotations

import importlib

from energy_console.core.models.base import LoadedModel, ModelLoadError, ModelSource

# A new source is one module defining SOURCE (a ModelSource) and one line here.
SOURCE_MODULES = (
    "energy_console.core.models.demo",
    "energy_console.core.models.hub",
    "energy_console.core.models.local",
    "energy_console.core.models.factory",
    "energy_console.core.models.onnx_file",
    "energy_console.core.models.torchvision_models",
    "energy_console.core.models.timm_models",
)


BARE_STRING_SOURCE = "hf"  # a bare string in `models:` that no source claims is a hub id


def sources() -> dict[str, ModelSource]:
    """Every model source by its profile key, in SOURCE_MODULES order."""
    found = (importlib.import_module(module).SOURCE for module in SOURCE_MODULES)
    return {source.key: source for source in found}


def bare_string_source(text: str) -> str:
    """The key of the source a bare string in a profile's `models:` names."""
    claimed = (key for key, source in sources().items() if source.claims(text))
    return next(claimed, BARE_STRING_SOURCE)


def source_for(key: str) -> ModelSource:
    return sources()[key]


def load_model(entry, device: str) -> LoadedModel:
    """Load a profile's model entry on a device; raises ModelLoadError with the fix."""
    return source_for(entry.source).load(entry, device)


__all__ = [
    "LoadedModel",
    "ModelLoadError",
    "ModelSource",
    "bare_string_source",
    "load_model",
    "source_for",
    "sources",
]

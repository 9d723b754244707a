"""Model sources: built-in demo models, Hugging Face hub ids, local folders."""

from __future__ import annotations

from energy_console.core.models.base import LoadedModel, ModelLoadError


def source_for(kind: str):
    from energy_console.core.models.demo import DemoSource
    from energy_console.core.models.hub import HubSource
    from energy_console.core.models.local import LocalSource

    return {"demo": DemoSource, "hf": HubSource, "path": LocalSource}[kind]()


def load_model(entry, device: str) -> LoadedModel:
    """Load a profile's model entry on a device; raises ModelLoadError with the fix."""
    return source_for(entry.source).load(entry, device)


__all__ = ["LoadedModel", "ModelLoadError", "load_model", "source_for"]

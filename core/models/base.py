"""What every model source yields, and the one protocol sources keep.

Sources live one per module (demo, hub, local, factory, onnx_file, torchvision_models,
timm_models), each listed once in core.models.SOURCE_MODULES.
Their modules import torch and transformers only inside functions, so listing models stays light
for the UI.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from energy_console.core.spec.tasks import input_family

if TYPE_CHECKING:
    import torch
    from energy_console.core.spec.profile import ModelEntry

# Modules a source's workers import, by name, for the session's forkserver to import once before
# it forks them (core.session.worker_process.preload_modules); naming one imports nothing here.
TRANSFORMERS_CLASSES = "energy_console.core.worker.preload_transformers"
ONNX_PACKAGE = "onnx"

@dataclass
class LoadedModel:
    """A model ready to run: the module (eval mode, on its device), its task, and how to feed it."""

    module: torch.nn.Module
    task: str
    make_inputs: Callable[..., dict[str, Any]]  # (batch_size, size, seed=0) -> model kwargs
    config: Any = None
    tokenizer: Any = None  # present where the source has one
    image_processor: Any = None
    label_names: list[str] | None = None
    notes: list[str] = field(default_factory=list)
    detection_head: str | None = None  # object-detection: how outputs read (core.detection.HEADS)
    runtime: str = "torch"  # what runs `module`: torch, or onnxruntime (an ONNX file's graph)

    @property
    def family(self) -> str:
        return input_family(self.task)


@dataclass(frozen=True)
class ImagePreprocessing:
    """How a source's images are normalised (LoadedModel.image_processor where no transformers
    processor exists): the eval set reads image_mean and image_std; the run's resolution sizes
    the images. `size` and `interpolation` are what the weights were trained at, for notes."""

    image_mean: tuple[float, ...] = (0.5, 0.5, 0.5)
    image_std: tuple[float, ...] = (0.5, 0.5, 0.5)
    size: int | None = None
    interpolation: str = "bilinear"


@dataclass(frozen=True)
class ModelDescription:
    """One line of `energy-console list models`."""

    ref: str
    task: str
    summary: str


class ModelSource(Protocol):
    """A place models come from; a new source is a module with one of these, listed in
    core.models.SOURCE_MODULES. Everything but `load` stays light (no torch)."""

    key: str  # the profile key naming it (`hf: org/name`), kept as ModelEntry.source
    option_keys: tuple[str, ...]  # its own keys beside the ref (ModelEntry.options)

    def claims(self, text: str) -> bool:
        """Whether a bare string in a profile's `models:` is a model of this source (by its form;
        one no source claims goes to core.models.BARE_STRING_SOURCE)."""
        ...

    def check_ref(self, ref: str) -> str | None:
        """Why `ref` names no model of this source, checked when the profile loads; or None."""
        ...

    def check_options(self, options: dict[str, Any]) -> tuple[str, str] | None:
        """(key, problem) for an option the source cannot use, checked when the profile loads;
        or None."""
        ...

    def known_task(self, ref: str) -> str | None:
        """The model's task where known before loading it; None to learn it from its config."""
        ...

    def preflight(self, entry: ModelEntry) -> str | None:
        """Why the entry cannot load, found without loading it (cheap: no torch); or None.
        `energy-console run` asks before the session starts."""
        ...

    def config_task(self, entry: ModelEntry) -> str | None:
        """The task its config names, where the config can be read without loading; or None."""
        ...

    def loading_from(self, entry: ModelEntry) -> str:
        """What loading the entry will do, as the live view shows it while the worker loads
        (`from the local cache`, `downloading from the hub`); light, no torch."""
        ...

    def preload(self, entry: ModelEntry) -> tuple[str, ...]:
        """The modules its workers will import (TRANSFORMERS_CLASSES, ONNX_PACKAGE), for the
        session's forkserver to import once instead of each variant's worker; light: named, not
        imported. What a worker needs and the forkserver lacks, the worker imports itself."""
        ...

    def load(self, entry: ModelEntry, device: str) -> LoadedModel: ...


class NotApplicable(Exception):
    """A technique or workload cannot apply to this model or device: the run is skipped."""


class ModelLoadError(Exception):
    """A model that cannot be loaded; the message names the problem and the fix."""

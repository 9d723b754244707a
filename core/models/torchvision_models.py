"""torchvision's models: `torchvision: resnet18`, classifiers and detectors.

    - torchvision: resnet18
      weights: DEFAULT                  # a weights name (DEFAULT, IMAGENET1K_V1; from torch's
                                        # hub cache offline), a state-dict file, or none: random
      kwargs: {num_classes: 102}        # passed to the builder (a fine-tuned head)

A classifier is normalised as its weights' transforms say (mean, std; size and interpolation
are noted) and its labels are the weights' categories. A detector (fasterrcnn_*, ssd*,
retinanet_*, fcos_*) takes a list of images and runs its own post-processing (NMS) inside the
timed window, as the demo torchvision detectors do. Needs torchvision built for this torch
(the optional `torchvision` extra); where it does not load, the runs are skipped with why.
"""

from __future__ import annotations

import re
from typing import Any

from energy_console.core.models.base import ImagePreprocessing, LoadedModel, ModelLoadError

NAME_PATTERN = re.compile(r"[a-z][a-z0-9_]*")
DETECTOR_PREFIXES = ("fasterrcnn_", "fcos_", "retinanet_", "ssd", "maskrcnn_", "keypointrcnn_")
WEIGHT_FILE_SUFFIXES = (".pt", ".pth", ".bin", ".safetensors")
INSTALL = "pip install 'energy-console[torchvision]' (a build that matches this torch)"


def model_task(name: str) -> str:
    return "object-detection" if name.startswith(DETECTOR_PREFIXES) else "image-classification"


def preprocessing_from_transforms(transforms: Any) -> ImagePreprocessing:
    """What a weights' transforms() (torchvision's ImageClassification preset) normalise with;
    read from its attributes, so any object with them will do."""
    interpolation = getattr(transforms, "interpolation", "bilinear")
    crop = getattr(transforms, "crop_size", None)
    return ImagePreprocessing(
        image_mean=tuple(float(v) for v in transforms.mean),
        image_std=tuple(float(v) for v in transforms.std),
        size=int(crop[0]) if crop else None,
        interpolation=str(getattr(interpolation, "value", interpolation)))


def detection_labels(categories: list[str]) -> list[str]:
    """Label names of a torchvision detector's classes 1..N: its categories after the
    background (class 0); placeholders ("N/A") keep the ids of the classes after them."""
    if categories and categories[0] == "__background__":
        return list(categories[1:])
    return list(categories)


def torchvision_module():
    """torchvision, or NotApplicable saying why it cannot be used with this torch."""
    from energy_console.core.models.base import NotApplicable

    try:
        import torch
        import torchvision

        torch.ops.torchvision.nms  # noqa: B018 - a CUDA wheel beside a CPU torch fails here
    except Exception as exc:  # ImportError, or RuntimeError/AttributeError from the op registry
        raise NotApplicable(f"torchvision cannot be used here ({type(exc).__name__}: {exc}); "
                            f"{INSTALL}") from None
    return torchvision


class TorchvisionSource:
    key = "torchvision"
    option_keys: tuple[str, ...] = ("weights", "kwargs")

    def claims(self, text: str) -> bool:
        return False  # always written `torchvision: name`

    def check_ref(self, ref: str) -> str | None:
        if NAME_PATTERN.fullmatch(ref):
            return None
        return (f"{ref!r} is not a torchvision model name (e.g. resnet18, "
                "ssdlite320_mobilenet_v3_large)")

    def check_options(self, options: dict[str, Any]) -> tuple[str, str] | None:
        weights = options.get("weights")
        if weights is not None and not (isinstance(weights, str) and weights.strip()):
            return "weights", f"{weights!r}: expected DEFAULT, a weights name or a file path"
        kwargs = options.get("kwargs")
        if kwargs is not None and not isinstance(kwargs, dict):
            return "kwargs", f"{kwargs!r}: expected a mapping of names to values"
        return None

    def preload(self, entry) -> tuple[str, ...]:
        return ()  # not torchvision itself: one that fails to load (a mismatched build raises
        # RuntimeError, not ImportError) would take the forkserver, and every run, down with it

    def loading_from(self, entry) -> str:
        return "through torchvision (weights from the torch hub cache, or downloaded)"

    def known_task(self, ref: str) -> str | None:
        return model_task(ref)

    def preflight(self, entry) -> str | None:
        from energy_console.core.models.base import NotApplicable

        try:
            torchvision_module()
        except NotApplicable as exc:
            return f"torchvision model {entry.ref!r}: {exc}"
        return None

    def config_task(self, entry) -> str | None:
        return entry.task or model_task(entry.ref)

    def load(self, entry, device: str) -> LoadedModel:
        import torch
        from energy_console.core.models.demo import image_input_factory
        from energy_console.core.models.factory import load_weights
        from energy_console.core.models.wrapped import PositionalModel

        models = torchvision_module().models
        options = entry.options or {}
        weights = options.get("weights")
        is_file = isinstance(weights, str) and weights.lower().endswith(WEIGHT_FILE_SUFFIXES)
        label = f"torchvision model {entry.ref!r}"
        torch.manual_seed(0)
        try:
            model = models.get_model(entry.ref, weights=None if is_file else weights,
                                     **options.get("kwargs", {}))
        except Exception as exc:  # unknown name, weights not cached offline, bad kwargs
            raise ModelLoadError(f"{label} could not be built ({type(exc).__name__}: {exc}); "
                                 "offline, pretrained weights must be in torch's hub cache") \
                from exc
        notes = []
        meta: dict[str, Any] = {}
        processor = ImagePreprocessing((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
        if is_file:
            load_weights(model, entry.resolve(weights), entry.ref)
        elif weights:
            enum = models.get_model_weights(entry.ref)
            chosen = enum.DEFAULT if weights == "DEFAULT" else enum[weights]
            meta, processor = chosen.meta, preprocessing_from_transforms(chosen.transforms())
        else:
            notes.append(f"{label}: no `weights:`, so its weights are random: quality figures "
                         "are only meaningful as fidelity")
        task = entry.task or model_task(entry.ref)
        categories = meta.get("categories")
        model = model.eval().to(device)
        if task == "object-detection":
            return LoadedModel(module=model, task=task, make_inputs=image_input_factory(3, device),
                               label_names=detection_labels(categories) if categories else None,
                               image_processor=processor, notes=notes,
                               detection_head="torchvision")
        return LoadedModel(module=PositionalModel(model, "pixel_values"), task=task,
                           make_inputs=image_input_factory(3, device), image_processor=processor,
                           label_names=list(categories) if categories else None, notes=notes)


SOURCE = TorchvisionSource()

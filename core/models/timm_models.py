"""timm's models: `timm: mixer_b16_224`, image classifiers.

    - timm: mixer_b16_224
      pretrained: true                  # timm's pretrained weights (from the hub cache offline)
      checkpoint: mixer-flowers.pt      # or a state-dict file (weights_only), e.g. fine-tuned
      kwargs: {num_classes: 102}        # passed to timm.create_model

The model's pretrained config gives its input size, mean, std and interpolation; a model whose
config says its input size is fixed (ViT, MLP-Mixer) takes that resolution only. Labels come
from the config's label names where it has them. Needs timm (the optional `timm` extra), which
needs a torchvision that loads with this torch; where it does not, the runs are skipped with why.
"""

from __future__ import annotations

import importlib.util
import re
from typing import Any

from energy_console.core.models.base import ImagePreprocessing, LoadedModel, ModelLoadError

NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
INSTALL = "pip install 'energy-console[timm]' (with a torchvision that matches this torch)"


def preprocessing_from_config(config: dict[str, Any]) -> ImagePreprocessing:
    """Normalisation from timm's data config (resolve_data_config) or a pretrained_cfg:
    input_size (C, H, W), mean, std, interpolation."""
    size = config.get("input_size") or (3, None, None)
    return ImagePreprocessing(
        image_mean=tuple(float(v) for v in config.get("mean", (0.5, 0.5, 0.5))),
        image_std=tuple(float(v) for v in config.get("std", (0.5, 0.5, 0.5))),
        size=int(size[1]) if size[1] else None,
        interpolation=str(config.get("interpolation") or "bilinear"))


def fixed_size(config: dict[str, Any]) -> int | None:
    """The one resolution a model takes, where its config says its input size is fixed."""
    size = config.get("input_size")
    return int(size[1]) if config.get("fixed_input_size") and size else None


def label_names(config: dict[str, Any], num_classes: int) -> list[str] | None:
    """The config's class names where it has one per output class."""
    names = config.get("label_names")
    return list(names) if names and len(names) == num_classes else None


def timm_module():
    """timm, or NotApplicable saying why it cannot be used here."""
    from energy_console.core.models.base import NotApplicable

    if importlib.util.find_spec("timm") is None:
        raise NotApplicable(f"timm is not installed: {INSTALL}")
    try:
        import timm
    except Exception as exc:  # its torchvision import: a wheel that does not match this torch
        raise NotApplicable(f"timm cannot be imported here ({type(exc).__name__}: {exc}); "
                            f"{INSTALL}") from None
    return timm


class TimmSource:
    key = "timm"
    option_keys: tuple[str, ...] = ("pretrained", "checkpoint", "kwargs")

    def claims(self, text: str) -> bool:
        return False  # always written `timm: name`

    def check_ref(self, ref: str) -> str | None:
        if NAME_PATTERN.fullmatch(ref):
            return None
        return f"{ref!r} is not a timm model name (e.g. mixer_b16_224, resnet18.a1_in1k)"

    def check_options(self, options: dict[str, Any]) -> tuple[str, str] | None:
        if not isinstance(options.get("pretrained", False), bool):
            return "pretrained", "expected true or false"
        checkpoint = options.get("checkpoint")
        if checkpoint is not None and not (isinstance(checkpoint, str) and checkpoint.strip()):
            return "checkpoint", f"{checkpoint!r}: expected a file path"
        if not isinstance(options.get("kwargs", {}), dict):
            return "kwargs", "expected a mapping of names to values"
        return None

    def preload(self, entry) -> tuple[str, ...]:
        return ()  # not timm itself: one that fails to load (a mismatched build raises
        # RuntimeError, not ImportError) would take the forkserver, and every run, down with it

    def loading_from(self, entry) -> str:
        return "through timm (weights from the Hugging Face cache, or downloaded)"

    def known_task(self, ref: str) -> str | None:
        return "image-classification"

    def preflight(self, entry) -> str | None:
        from energy_console.core.models.base import NotApplicable

        try:
            timm_module()
        except NotApplicable as exc:
            return f"timm model {entry.ref!r}: {exc}"
        return None

    def config_task(self, entry) -> str | None:
        return "image-classification"

    def load(self, entry, device: str) -> LoadedModel:
        import torch
        from energy_console.core.models.demo import image_input_factory
        from energy_console.core.models.factory import fixed_size_inputs, load_weights
        from energy_console.core.models.wrapped import PositionalModel

        timm = timm_module()
        options = entry.options or {}
        label = f"timm model {entry.ref!r}"
        torch.manual_seed(0)
        try:
            model = timm.create_model(entry.ref, pretrained=options.get("pretrained", False),
                                      **options.get("kwargs", {}))
        except Exception as exc:  # unknown name, weights not cached offline, bad kwargs
            raise ModelLoadError(f"{label} could not be built ({type(exc).__name__}: {exc}); "
                                 "offline, pretrained weights must be in the hub cache") from exc
        notes = []
        if options.get("checkpoint"):
            load_weights(model, entry.resolve(options["checkpoint"]), entry.ref)
        elif not options.get("pretrained"):
            notes.append(f"{label}: neither `pretrained: true` nor `checkpoint:`, so its weights "
                         "are random: quality figures are only meaningful as fidelity")
        config = dict(timm.data.resolve_data_config(model=model),
                      **{k: v for k, v in getattr(model, "pretrained_cfg", {}).items()
                         if k in ("fixed_input_size", "label_names")})
        make_inputs = image_input_factory(3, device)
        size = fixed_size(config)
        if size:
            make_inputs = fixed_size_inputs(make_inputs, size, entry.ref, "timm model")
        return LoadedModel(
            module=PositionalModel(model.eval(), "pixel_values").to(device),
            task="image-classification", make_inputs=make_inputs,
            image_processor=preprocessing_from_config(config),
            label_names=label_names(config, getattr(model, "num_classes", 0)), notes=notes)


SOURCE = TimmSource()

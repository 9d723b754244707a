"""Your own code: `factory: package.module:callable` builds any torch nn.Module.

    - factory: mynets.cnn:SmallCNN      # imported from the profile's folder, else sys.path
      folder: ../code                   # optional: the folder to import it from instead
      args: [10]                        # optional, passed to the callable
      kwargs: {width: 16}
      weights: small_cnn.pt             # optional state dict (torch.load weights_only=True,
                                        # or .safetensors), relative to the profile's folder
      task: image-classification        # required: image-classification | text-classification
                                        # | causal-lm
      input_shape: [3, 32, 32]          # one sample: C, H, W (images) or [seq_len] (tokens)
      preprocessing: {mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5]}   # images
      vocab_size: 1000                  # token models: ids are drawn below it
      labels: [cat, dog]                # optional class names (a dataset's label map matches)

Loading it RUNS the named module's code, as `trust_remote_code` runs a hub repository's:
name only code you have read. The model is called with one positional tensor (pixels
N×C×H×W, or token ids N×L) and returns logits (or an object with .logits, or a tuple whose
first item is the logits).
"""

from __future__ import annotations

import ast
import importlib.util
import re
from pathlib import Path
from typing import Any

from energy_console.core.models.base import (
    TRANSFORMERS_CLASSES,
    ImagePreprocessing,
    LoadedModel,
    ModelLoadError,
)
from energy_console.core.spec.tasks import TASKS

CALLABLE_PATTERN = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*(\.[A-Za-z_]\w*)*")
FACTORY_TASKS = tuple(t for t in TASKS if t != "object-detection")
STATE_DICT_KEYS = ("state_dict", "model", "model_state_dict")  # checkpoints that wrap one
MODULE_READ_LIMIT_BYTES = 1_000_000  # a module's source read to see what it imports


class FactorySource:
    key = "factory"
    option_keys: tuple[str, ...] = ("args", "kwargs", "weights", "input_shape", "preprocessing",
                                    "vocab_size", "labels", "folder")

    def claims(self, text: str) -> bool:
        return False  # always written `factory: module:callable`

    def check_ref(self, ref: str) -> str | None:
        if CALLABLE_PATTERN.fullmatch(ref):
            return None
        return (f"{ref!r} is not a callable's path; write `factory: package.module:callable` "
                "(e.g. mynets.cnn:SmallCNN)")

    def check_options(self, options: dict[str, Any]) -> tuple[str, str] | None:
        return check_options(options)

    def loading_from(self, entry) -> str:
        return "by calling its factory (weights: the state dict file named)"

    def preload(self, entry) -> tuple[str, ...]:
        """transformers where the module imports it, or where its source cannot be read: found
        by parsing the module (never running it), so a plain torch model's session does not
        import transformers (4 CPU-s) in its forkserver."""
        path = _module_file(entry.ref.split(":")[0], import_folder(entry))
        imports = _imported_packages(path) if path is not None else None
        return () if imports is not None and "transformers" not in imports \
            else (TRANSFORMERS_CLASSES,)

    def known_task(self, ref: str) -> str | None:
        return None  # the profile's `task:` (required: preflight and load say so)

    def preflight(self, entry) -> str | None:
        """The task, the module's file and the weights' file, found without running the code."""
        label = f"factory {entry.ref!r}"
        if entry.task not in FACTORY_TASKS:
            return (f"{label} needs `task:` in the profile, one of {', '.join(FACTORY_TASKS)}")
        options = entry.options or {}
        if entry.task != "image-classification" and "vocab_size" not in options:
            return f"{label}: a {entry.task} model needs `vocab_size:` (token ids are drawn below)"
        module_name = entry.ref.split(":")[0]
        folder = import_folder(entry)
        if "folder" in options and not Path(folder).is_dir():
            return f"{label}: folder {folder!r} does not exist; name the folder its module is in"
        if _module_file(module_name, folder) is None and \
                importlib.util.find_spec(module_name.split(".")[0]) is None:
            where = "the folder named" if "folder" in options else "the profile's folder"
            return (f"{label}: no module {module_name!r} in {where} ({folder}) or on the Python "
                    "path; put it beside the profile, or name its folder with `folder:`")
        weights = options.get("weights")
        if weights and not Path(entry.resolve(weights)).is_file():
            return f"{label}: weights file {entry.resolve(weights)!r} does not exist"
        return None

    def config_task(self, entry) -> str | None:
        return entry.task

    def load(self, entry, device: str) -> LoadedModel:
        import torch
        from energy_console.core.models.demo import image_input_factory, text_input_factory
        from energy_console.core.models.wrapped import PositionalModel

        reason = self.preflight(entry)
        if reason:
            raise ModelLoadError(reason)
        options = entry.options or {}
        build = import_callable(entry.ref, import_folder(entry))
        torch.manual_seed(0)  # what the weights file does not hold starts the same every run
        try:
            model = build(*options.get("args", []), **options.get("kwargs", {}))
        except Exception as exc:
            raise ModelLoadError(f"factory {entry.ref!r} raised {type(exc).__name__}: {exc} "
                                 "(check args: and kwargs:)") from exc
        if not isinstance(model, torch.nn.Module):
            raise ModelLoadError(f"factory {entry.ref!r} returned a {type(model).__name__}, not "
                                 "a torch.nn.Module")
        notes = []
        if options.get("weights"):
            load_weights(model, entry.resolve(options["weights"]), entry.ref)
        else:
            notes.append(f"factory {entry.ref!r}: no `weights:` given, so its weights are as "
                         "the callable initialised them: quality figures are only meaningful "
                         "as fidelity")
        image = entry.task == "image-classification"
        shape = options.get("input_shape") or ([3] if image else [])
        wrapped = PositionalModel(model, "pixel_values" if image else "input_ids").eval()
        make_inputs = (image_input_factory(shape[0], device) if image
                       else text_input_factory(options["vocab_size"], device))
        if len(shape) == 3:
            make_inputs = fixed_size_inputs(make_inputs, shape[1], entry.ref)
        preprocessing = options.get("preprocessing") or {}
        processor = ImagePreprocessing(
            tuple(preprocessing.get("mean", (0.5,) * shape[0])),
            tuple(preprocessing.get("std", (0.5,) * shape[0]))) if image else None
        return LoadedModel(module=wrapped.to(device), task=entry.task, make_inputs=make_inputs,
                           image_processor=processor, label_names=options.get("labels"),
                           notes=notes)


def check_options(options: dict[str, Any]) -> tuple[str, str] | None:
    """(key, problem) of the first option of the wrong shape (factory and onnx keys), or None."""
    checks = {
        "args": (lambda v: isinstance(v, list), "a list"),
        "kwargs": (lambda v: isinstance(v, dict) and all(isinstance(k, str) for k in v),
                   "a mapping of names to values"),
        "weights": (lambda v: isinstance(v, str) and bool(v.strip()), "a file path"),
        "input_shape": (lambda v: isinstance(v, list) and 1 <= len(v) <= 3
                        and all(_positive_int(d) for d in v),
                        "a list of 1 to 3 positive integers ([C, H, W] or [seq_len])"),
        "preprocessing": (_preprocessing_ok, "a mapping {mean: [...], std: [...]} with one "
                          "number per channel, std above 0"),
        "vocab_size": (_positive_int, "a positive integer"),
        "labels": (lambda v: isinstance(v, list) and bool(v)
                   and all(isinstance(x, str) for x in v), "a list of class names"),
        "folder": (lambda v: isinstance(v, str) and bool(v.strip()), "a folder path"),
    }
    for key, value in options.items():
        ok, expected = checks[key]
        if not ok(value):
            return key, f"{value!r} is not allowed; expected {expected}"
    return None


def _positive_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _preprocessing_ok(value) -> bool:
    if not isinstance(value, dict) or not set(value) <= {"mean", "std"}:
        return False
    mean, std = value.get("mean", []), value.get("std", [])
    numbers = all(isinstance(v, list) and all(isinstance(x, int | float)
                                              and not isinstance(x, bool) for x in v)
                  for v in (mean, std))
    return numbers and all(x > 0 for x in std)


def import_folder(entry) -> str:
    """The folder the entry's module is imported from before the Python path: its `folder:`
    (relative to the profile's folder), else the profile's folder."""
    folder = (entry.options or {}).get("folder")
    return entry.resolve(folder) if folder else entry.base_dir


def module_folder(entry) -> str | None:
    """The absolute folder the entry's module file lies in (import_folder), or None where it
    comes from the Python path: what a copy of the profile elsewhere (the console's, a
    session's) names as its `folder:`."""
    folder = import_folder(entry)
    found = _module_file(entry.ref.split(":")[0], folder)
    return str(Path(folder).resolve()) if found is not None else None


def _module_file(module_name: str, base_dir: str) -> Path | None:
    """The module's file under the profile's folder (package/module.py or its __init__.py)."""
    relative = Path(*module_name.split("."))
    for candidate in (relative.with_suffix(".py"), relative / "__init__.py"):
        path = Path(base_dir) / candidate
        if path.is_file():
            return path
    return None


def _imported_packages(path: Path) -> set[str] | None:
    """The top-level packages a module's source imports (`import a.b`, `from a import b`), or
    None where it cannot be read or parsed. Relative imports name no package."""
    try:
        with path.open("rb") as f:
            source = f.read(MODULE_READ_LIMIT_BYTES + 1)
        if len(source) > MODULE_READ_LIMIT_BYTES:
            return None
        tree = ast.parse(source, filename=str(path))
    except (OSError, SyntaxError, ValueError):
        return None
    packages: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            packages.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            packages.add(node.module.split(".")[0])
    return packages


def import_callable(ref: str, base_dir: str):
    """The callable `package.module:name`, its module imported from the profile's folder where
    it is there, else from sys.path. This runs the module's code."""
    import sys

    module_name, _, attribute = ref.partition(":")
    folder = str(Path(base_dir).resolve())
    added = _module_file(module_name, base_dir) is not None and folder not in sys.path
    if added:
        sys.path.insert(0, folder)
    try:
        target: Any = importlib.import_module(module_name)
    except Exception as exc:
        raise ModelLoadError(f"factory {ref!r}: importing {module_name!r} failed: "
                             f"{type(exc).__name__}: {exc}") from exc
    finally:
        if added:
            sys.path.remove(folder)
    for part in attribute.split("."):
        if not hasattr(target, part):
            raise ModelLoadError(f"factory {ref!r}: {module_name} has no {attribute!r}")
        target = getattr(target, part)
    if not callable(target):
        raise ModelLoadError(f"factory {ref!r}: {attribute!r} is not callable")
    return target


def load_weights(model, path: str, ref: str) -> None:
    """A state dict into the model, every key matched: torch.load with weights_only=True (no
    unpickling of code), or safetensors."""
    import torch

    state: Any
    try:
        if path.endswith(".safetensors"):
            from safetensors.torch import load_file

            state = load_file(path)
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ModelLoadError(f"factory {ref!r}: cannot read weights {path!r} as a state dict "
                             f"({type(exc).__name__}: {exc}); save them with "
                             "torch.save(model.state_dict(), path)") from exc
    for key in STATE_DICT_KEYS:
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
            break
    if not isinstance(state, dict):
        raise ModelLoadError(f"factory {ref!r}: {path!r} holds a {type(state).__name__}, not a "
                             "state dict; save torch.save(model.state_dict(), path)")
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()
        raise ModelLoadError(f"factory {ref!r}: the weights in {path!r} do not fit the model "
                             f"the callable built ({' '.join(first[:3])}); check args: and "
                             "kwargs:") from exc


def fixed_size_inputs(make_inputs, size: int, ref: str, kind: str = "factory"):
    """Inputs of a model that takes one image size only (input_shape [C, H, W]): a run of
    another resolution is skipped with the fix."""
    from energy_console.core.models.base import NotApplicable

    def sized(batch_size: int, resolution: int, seed: int = 0) -> dict:
        if resolution != size:
            raise NotApplicable(f"{kind} {ref!r} takes {size}×{size} images only; "
                                f"this run asks for {resolution}: set inputs.resolutions to "
                                f"[{size}]")
        return make_inputs(batch_size, resolution, seed)

    return sized


SOURCE = FactorySource()

"""Compressed model variants kept on disk (opt-in: `protocol.variant_cache`), so `--resume` and a
second session of a profile do not compress again.

A cached variant is the whole compressed module pickled with torch.save, with its size (measuring
it serialises the module: seconds for a large model) and what the technique left in its context
(input dtype, grad mode, details, warnings). Its key covers the uncompressed model
(quality.reference.model_identity: source, ref, task, device, dtype, a local folder's files), the
technique chain with its parameters, the calibration inputs' shape (static quantization
calibrates on them) and the versions of the libraries that compress. Loading unpickles: keep the
cache folder writable by you alone (it is yours: the session's cache/ or ~/.cache/energy-console).
A module that cannot be pickled (an ONNX Runtime session) is compressed every time, with a warning.
A technique that trains (finetune, qat) is never cached (core.worker.variant.compressed): its
training and the energy it costs are measured every time.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from energy_console.core.models.size import SizeReport

CACHE_FORMAT = 1
LIBRARIES = ("torch", "transformers", "optimum-quanto", "torch-pruning", "onnxruntime", "torchao")
CACHE_DIR_ENV = "ENERGY_CONSOLE_CACHE_DIR"


def user_cache_dir() -> Path:
    """$ENERGY_CONSOLE_CACHE_DIR, else $XDG_CACHE_HOME/energy-console, else ~/.cache/..."""
    if os.environ.get(CACHE_DIR_ENV):
        return Path(os.environ[CACHE_DIR_ENV])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "energy-console"


def cache_folder(setting: str, session_cache: Path) -> Path | None:
    """Where compressed variants go for `protocol.variant_cache` (off | session | user)."""
    if setting == "session":
        return session_cache / "variants"
    if setting == "user":
        return user_cache_dir() / "variants"
    return None


def library_versions() -> dict[str, str]:
    versions = {}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "absent"
    return versions


@dataclass(frozen=True)
class VariantCache:
    folder: Path

    def key(self, loaded, spec, ctx) -> str:
        """Taken before compressing: a technique may change the loaded module in place."""
        from energy_console.core.quality.reference import model_identity

        identity = {
            "model": model_identity(loaded, spec, ctx.device, CACHE_FORMAT),
            "technique": spec.technique.to_yaml(),
            "calibration": [spec.batch_size, spec.input_size],
            "libraries": library_versions(),
        }
        return hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()
                              ).hexdigest()

    def path(self, key: str) -> Path:
        return self.folder / f"variant-{key[:24]}.pt"

    def load(self, key: str, ctx) -> tuple[Any, SizeReport] | None:
        """The cached compressed module and its size (ctx restored as the technique left it),
        or None."""
        import torch

        path = self.path(key)
        if not path.is_file():
            return None
        try:
            data = torch.load(path, weights_only=False, map_location=ctx.device)
        except Exception as exc:  # a torn or foreign file: compress again
            ctx.warnings.append(f"variant cache {path.name} unreadable ({exc}); compressed again")
            return None
        if data.get("format") != CACHE_FORMAT or data.get("key") != key:
            return None
        for name, value in data["ctx"].items():
            setattr(ctx, name, value)
        return data["module"], SizeReport(**data["size"])

    def save(self, key: str, module, ctx, size: SizeReport) -> None:
        import torch

        path = self.path(key)
        state = {name: getattr(ctx, name) for name in
                 ("input_dtype", "needs_no_grad", "extra_result", "warnings")}
        self.folder.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            torch.save({"format": CACHE_FORMAT, "key": key, "module": module,
                        "size": dataclasses.asdict(size),
                        "ctx": {**state, "warnings": list(ctx.warnings)}}, tmp)
            os.replace(tmp, path)
        except Exception as exc:  # not picklable, or no room: the run goes on uncached
            tmp.unlink(missing_ok=True)
            ctx.warnings.append(f"compressed variant not cached ({type(exc).__name__}: {exc})")

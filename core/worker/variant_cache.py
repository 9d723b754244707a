"""Compressed model variants kept on disk (opt-in: `protocol.variant_cache`), so `--resume` and a
second session of a profile do not compress again.

A cached variant keeps its size (measuring it serialises the module: seconds for a large model)
and what the technique left in its context (input dtype, grad mode, details, warnings). Its key
covers the uncompressed model (quality.reference.model_identity: source, ref, task, device,
dtype, a local folder's files), the technique chain with its parameters, the calibration inputs'
shape (static quantization calibrates on them) and the versions of the libraries that compress.

Where it can, a variant is kept as weights alone, which nothing runs when read: a variant with
the uncompressed model's modules and shapes, plain tensors and no added hooks (the baseline,
fp16/bf16, magnitude pruning) is a safetensors file, rebuilt on the uncompressed model just
loaded (variant_weights.py). The others (quantized modules and tensor subclasses, reshaped
layers, pruning's hooks) have no architecture to load tensors into without compressing again:
they are pickled whole with torch.save. A module that cannot be pickled (an ONNX Runtime
session) is compressed every time, with a warning.

Unpickling runs code: the cache trusts nobody else, whatever the format. Its folder must belong
to the user running the session and be writable by nobody else (nor its parent, unless sticky),
and each entry must be a regular file of that user, opened without following a link, whose
SHA-256 matches the one its sidecar recorded when it was written; otherwise it is not read (the
variant is compressed again, with a warning that says why). Entries are written through a
temporary file of an unpredictable name created exclusively in the folder, then renamed: a link
planted anywhere is never written through.
A technique that trains (finetune, qat) is never cached (core.worker.variant.compressed): its
training and the energy it costs are measured every time.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import stat
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from energy_console.core.models.size import SizeReport
from energy_console.core.worker.variant_weights import decode, encode, plain_tensors, rebuild

CACHE_FORMAT = 2  # 2: variants of plain tensors kept as weights alone
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
        """Where a variant kept as a pickle goes."""
        return self.folder / f"variant-{key[:24]}.pt"

    def weights_path(self, key: str) -> Path:
        """Where a variant kept as weights alone goes (variant_weights.py)."""
        return self.folder / f"variant-{key[:24]}.safetensors"

    def load(self, key: str, ctx, base_module=None) -> tuple[Any, SizeReport] | None:
        """The cached compressed module and its size (ctx restored as the technique left it),
        or None: absent, or not trusted (then a warning says why). A variant kept as weights is
        rebuilt on `base_module`, the uncompressed model just loaded (it becomes the variant)."""
        weights = self.weights_path(key)
        if base_module is not None and (weights.exists() or weights.is_symlink()):
            return self._read(weights, ctx, lambda handle: _rebuilt(handle, key, base_module))
        return self._read(self.path(key), ctx, lambda handle: _unpickled(handle, key, ctx))

    def _read(self, path: Path, ctx, read: Callable[[Any], Entry | None]
              ) -> tuple[Any, SizeReport] | None:
        """An entry read by `read` once the folder, its owner, mode and digest are trusted."""
        if not path.exists() and not path.is_symlink():
            return None
        problem = folder_problem(self.folder)
        if problem:
            ctx.warnings.append(f"variant cache not used: {problem}; compressed again")
            return None
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError as exc:  # a link (ELOOP) or gone
            ctx.warnings.append(f"variant cache {path.name} not read ({exc.strerror}); "
                                "compressed again")
            return None
        with os.fdopen(fd, "rb") as handle:
            problem = (_owner_problem(os.fstat(fd), path.name)
                       or _digest_problem(handle, _digest_path(path)))
            if problem:
                ctx.warnings.append(f"variant cache not used: {problem}; compressed again")
                return None
            handle.seek(0)
            try:
                entry = read(handle)
            except Exception as exc:  # a torn file: compress again
                ctx.warnings.append(f"variant cache {path.name} unreadable ({exc}); "
                                    "compressed again")
                return None
        if entry is None:
            return None
        module, size, state = entry
        for name, value in state.items():
            setattr(ctx, name, value)
        return module, size

    def save(self, key: str, module, ctx, size: SizeReport,
             base_structure: dict[str, list] | None = None) -> None:
        """Keep a compressed variant: as weights alone when it has the structure the
        uncompressed model had before compressing (`base_structure`, module_structure's), plain
        tensors and a context that is plain data; else as a pickle (loaded only when trusted)."""
        import torch

        state = {name: getattr(ctx, name) for name in
                 ("input_dtype", "needs_no_grad", "extra_result", "warnings")}
        state["warnings"] = list(ctx.warnings)
        try:
            self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        except OSError as exc:
            ctx.warnings.append(f"compressed variant not cached ({exc})")
            return
        problem = folder_problem(self.folder)
        if problem:
            ctx.warnings.append(f"compressed variant not cached: {problem}")
            return
        weights = _as_weights(key, module, state, size, base_structure)
        if weights is not None:
            self._write(self.weights_path(key), ctx, lambda handle: handle.write(weights))
            return
        self._write(self.path(key), ctx, lambda handle: torch.save(
            {"format": CACHE_FORMAT, "key": key, "module": module,
             "size": dataclasses.asdict(size), "ctx": state}, handle))

    def _write(self, path: Path, ctx, write: Callable[[Any], Any]) -> None:
        """An entry and its digest, each through an unpredictable temporary file created
        exclusively in the folder, then renamed (a link planted anywhere is never written
        through)."""
        written: list[str] = []
        try:
            fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=self.folder)
            written.append(tmp)
            with os.fdopen(fd, "w+b") as handle:
                write(handle)
                handle.flush()
                handle.seek(0)
                digest = _sha256(handle)
            fd, tmp_digest = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".sha256.tmp",
                                              dir=self.folder)
            written.append(tmp_digest)
            with os.fdopen(fd, "w") as handle:
                handle.write(digest + "\n")
            os.replace(tmp_digest, _digest_path(path))
            os.replace(tmp, path)
        except Exception as exc:  # not picklable, or no room: the run goes on uncached
            for name in written:
                Path(name).unlink(missing_ok=True)
            ctx.warnings.append(f"compressed variant not cached ({type(exc).__name__}: {exc})")


# (module, size, what the technique left in its context)
Entry = tuple[Any, SizeReport, dict[str, Any]]


def _unpickled(handle, key: str, ctx) -> Entry | None:
    import torch

    data = torch.load(handle, weights_only=False, map_location=ctx.device)
    if data.get("format") != CACHE_FORMAT or data.get("key") != key:
        return None
    return data["module"], SizeReport(**data["size"]), data["ctx"]


def _as_weights(key: str, module, state: dict[str, Any], size: SizeReport,
                base_structure: dict[str, list] | None) -> bytes | None:
    """The variant as a safetensors file, or None when it is more than its weights."""
    dtype = state["input_dtype"]
    about = {"format": CACHE_FORMAT, "key": key, "size": dataclasses.asdict(size),
             "ctx": {**state, "input_dtype": None if dtype is None else str(dtype)}}
    try:
        if json.loads(json.dumps(about)) != about:  # tuples, objects: not plain data
            return None
    except (TypeError, ValueError):
        return None
    tensors = plain_tensors(module, base_structure)
    if tensors is None:
        return None
    try:
        return encode(module, tensors, about)
    except Exception:  # noqa: BLE001 - tensors sharing memory, say: kept as a pickle
        return None


def _rebuilt(handle, key: str, base_module) -> Entry | None:
    """A variant kept as weights, on the uncompressed module (read through the checked handle's
    own file: /proc/self/fd, never the name again)."""
    import torch

    tensors, meta = decode(f"/proc/self/fd/{handle.fileno()}")
    if meta.get("format") != CACHE_FORMAT or meta.get("key") != key:
        return None
    state = dict(meta["ctx"])
    if state["input_dtype"] is not None:
        dtype = getattr(torch, str(state["input_dtype"]).removeprefix("torch."), None)
        if not isinstance(dtype, torch.dtype):
            return None
        state["input_dtype"] = dtype
    module = rebuild(base_module, tensors, meta)
    if module is None:
        raise ValueError("the model loaded is not the one this variant was made from")
    return module, SizeReport(**meta["size"]), state


def _digest_path(entry: Path) -> Path:
    return entry.with_name(entry.name + ".sha256")


def folder_problem(folder: Path) -> str | None:
    """Why the cache folder cannot be trusted, or None: it must be a real folder of this user
    that nobody else can write, in a parent nobody else can write unless it is sticky."""
    try:
        info = os.lstat(folder)
        parent = os.stat(folder.parent)
    except OSError as exc:
        return f"{folder}: {exc.strerror}"
    if stat.S_ISLNK(info.st_mode) or not stat.S_ISDIR(info.st_mode):
        return f"{folder} is not a folder (a link, or a file)"
    problem = _owner_problem(info, str(folder))
    if problem:
        return problem
    if parent.st_mode & stat.S_IWOTH and not parent.st_mode & stat.S_ISVTX:
        return (f"its parent {folder.parent} is writable by every user (mode "
                f"{stat.S_IMODE(parent.st_mode):o}) without the sticky bit")
    return None


def _owner_problem(info: os.stat_result, what: str) -> str | None:
    if info.st_uid != os.geteuid():
        return (f"{what} belongs to uid {info.st_uid}, not to the user running the session "
                f"(uid {os.geteuid()})")
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return (f"{what} is writable by other users (mode {stat.S_IMODE(info.st_mode):o}); "
                f"make it yours alone: chmod go-w")
    if not stat.S_ISREG(info.st_mode) and not stat.S_ISDIR(info.st_mode):
        return f"{what} is not a regular file"
    return None


def _sha256(handle) -> str:
    digest = hashlib.sha256()
    while chunk := handle.read(1 << 20):
        digest.update(chunk)
    return digest.hexdigest()


def _digest_problem(handle, digest_path: Path) -> str | None:
    """Whether the entry read through `handle` matches the digest recorded beside it."""
    try:
        fd = os.open(digest_path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as exc:
        return f"{digest_path.name}: {exc.strerror}"
    with os.fdopen(fd) as recorded:
        problem = _owner_problem(os.fstat(fd), digest_path.name)
        expected = recorded.read(100).strip()
    if problem:
        return problem
    if _sha256(handle) != expected:
        return (f"{digest_path.name.removesuffix('.sha256')} does not match its recorded SHA-256 "
                "(torn or replaced)")
    return None

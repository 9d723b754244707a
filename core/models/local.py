"""Local model folders in save_pretrained layout."""

from __future__ import annotations

import json
from pathlib import Path

from energy_console.core.models.base import TRANSFORMERS_CLASSES, LoadedModel, ModelLoadError
from energy_console.core.models.pretrained import (
    config_problem,
    load_pretrained,
    read_config,
    task_from_config,
)

WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin", "model.safetensors.index.json",
                "pytorch_model.bin.index.json")


class LocalSource:
    key = "path"
    option_keys: tuple[str, ...] = ()

    def check_options(self, options) -> tuple[str, str] | None:
        return None  # no keys of its own

    def claims(self, text: str) -> bool:
        return False  # a folder is always written `path: DIR`

    def check_ref(self, ref: str) -> str | None:
        return None  # relative to the profile's folder: checked when the run loads it

    def loading_from(self, entry) -> str:
        return "from its folder"

    def preload(self, entry) -> tuple[str, ...]:
        return (TRANSFORMERS_CLASSES,)  # a save_pretrained folder

    def known_task(self, ref: str) -> str | None:
        return None

    def preflight(self, entry) -> str | None:
        folder = Path(entry.resolved_ref)
        label = f"local model {str(folder)!r}"
        try:
            self._check_folder(folder)
            if not any((folder / name).is_file() for name in WEIGHT_FILES):
                return (f"{label} holds no weights ({', '.join(WEIGHT_FILES[:2])}, ...); save "
                        "the model with model.save_pretrained(folder)")
            config = json.loads(read_config(folder / "config.json"))
        except ModelLoadError as exc:
            return str(exc)
        except ValueError as exc:
            return (f"{label}: config.json is not valid JSON ({exc}); save the model again with "
                    "model.save_pretrained(folder)")
        except OSError as exc:
            return f"{label}: cannot read config.json ({exc.strerror or exc})"
        return config_problem(config, entry, label)

    def config_task(self, entry) -> str | None:
        return task_from_config(Path(entry.resolved_ref) / "config.json")

    def _check_folder(self, folder: Path) -> None:
        if not folder.is_dir():
            raise ModelLoadError(
                f"local model folder {str(folder)!r} does not exist; fix `path:` in the profile "
                "(relative paths are read from the profile's folder)"
            )
        if not (folder / "config.json").is_file():
            raise ModelLoadError(
                f"{str(folder)!r} has no config.json; save the model with "
                "model.save_pretrained(folder) (and its tokenizer or image processor beside it)"
            )

    def load(self, entry, device: str) -> LoadedModel:
        folder = Path(entry.resolved_ref)
        self._check_folder(folder)
        return load_pretrained(
            str(folder), entry.task, device, entry.trust_remote_code, f"local model {str(folder)!r}"
        )


SOURCE = LocalSource()

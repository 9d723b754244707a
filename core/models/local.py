"""Local model folders in save_pretrained layout."""

from __future__ import annotations

from pathlib import Path

from energy_console.core.models.base import LoadedModel, ModelLoadError
from energy_console.core.models.pretrained import load_pretrained


class LocalSource:
    key = "path"

    def claims(self, text: str) -> bool:
        return False  # a folder is always written `path: DIR`

    def check_ref(self, ref: str) -> str | None:
        return None  # relative to the profile's folder: checked when the run loads it

    def known_task(self, ref: str) -> str | None:
        return None

    def load(self, entry, device: str) -> LoadedModel:
        folder = Path(entry.resolved_ref)
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
        return load_pretrained(
            str(folder), entry.task, device, entry.trust_remote_code, f"local model {str(folder)!r}"
        )


SOURCE = LocalSource()

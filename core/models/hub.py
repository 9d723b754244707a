"""Hugging Face hub ids, through the real from_pretrained (the local cache serves offline)."""

from __future__ import annotations

from energy_console.core.models.base import LoadedModel
from energy_console.core.models.pretrained import load_pretrained


class HubSource:
    name = "hf"

    def load(self, entry, device: str) -> LoadedModel:
        return load_pretrained(
            entry.ref, entry.task, device, entry.trust_remote_code, f"hub model {entry.ref!r}"
        )

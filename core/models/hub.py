"""Hugging Face hub ids, through the real from_pretrained (the local cache serves offline)."""

from __future__ import annotations

from energy_console.core.models.base import LoadedModel
from energy_console.core.models.pretrained import load_pretrained


class HubSource:
    key = "hf"

    def claims(self, text: str) -> bool:
        return False  # no form tells a hub id apart: core.models.BARE_STRING_SOURCE names the hub

    def check_ref(self, ref: str) -> str | None:
        return None  # only the hub knows; loading says why not

    def known_task(self, ref: str) -> str | None:
        return None

    def load(self, entry, device: str) -> LoadedModel:
        return load_pretrained(
            entry.ref, entry.task, device, entry.trust_remote_code, f"hub model {entry.ref!r}"
        )


SOURCE = HubSource()

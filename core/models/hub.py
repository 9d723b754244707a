"""Hugging Face hub ids, through the real from_pretrained (the local cache serves offline)."""

from __future__ import annotations

import json

from energy_console.core.models.base import LoadedModel
from energy_console.core.models.pretrained import config_problem, load_pretrained, read_config


def cached_config(ref: str) -> str | None:
    """The path of the id's config.json in the local Hugging Face cache, if it is there."""
    try:
        from huggingface_hub import try_to_load_from_cache

        found = try_to_load_from_cache(ref, "config.json")
    except Exception:  # a malformed id: from_pretrained says why when it loads
        return None
    return found if isinstance(found, str) else None


def hub_offline() -> bool:
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE)


class HubSource:
    key = "hf"
    option_keys: tuple[str, ...] = ()

    def check_options(self, options) -> tuple[str, str] | None:
        return None  # no keys of its own

    def claims(self, text: str) -> bool:
        return False  # no form tells a hub id apart: core.models.BARE_STRING_SOURCE names the hub

    def check_ref(self, ref: str) -> str | None:
        return None  # only the hub knows; loading says why not

    def known_task(self, ref: str) -> str | None:
        return None

    def preflight(self, entry) -> str | None:
        """Offline, a hub id must be in the local cache; online only the hub knows."""
        path = cached_config(entry.ref)
        if path is None:
            if hub_offline():
                return (f"hub model {entry.ref!r} is not in the local Hugging Face cache and the "
                        "hub is offline (HF_HUB_OFFLINE=1); download it with `hf download "
                        f"{entry.ref}` on a machine with network, or use a local folder (`path:`)")
            return None
        try:
            return config_problem(json.loads(read_config(path)), entry, f"hub model {entry.ref!r}")
        except ValueError:
            return None  # a cache entry being written: loading reads it again

    def config_task(self, entry) -> str | None:
        from energy_console.core.models.pretrained import task_from_config

        path = cached_config(entry.ref)
        return task_from_config(path) if path else None

    def load(self, entry, device: str) -> LoadedModel:
        return load_pretrained(
            entry.ref, entry.task, device, entry.trust_remote_code, f"hub model {entry.ref!r}"
        )


SOURCE = HubSource()

"""Hugging Face hub ids, through the real from_pretrained (the local cache serves offline).

An id that is not in the cache fails at pre-flight, in seconds, with the command that downloads
it, where the hub cannot be used: offline (HF_HUB_OFFLINE=1), or its endpoint does not answer
within HUB_ANSWER_S (asked once; the hub client would retry its downloads for most of a minute).
"""

from __future__ import annotations

import json
import socket
import threading
from urllib.parse import urlsplit

from energy_console.core.models.base import TRANSFORMERS_CLASSES, LoadedModel
from energy_console.core.models.pretrained import config_problem, load_pretrained, read_config


def cached_config(ref: str) -> str | None:
    """The path of the id's config.json in the local Hugging Face cache, if it is there."""
    try:
        from huggingface_hub import try_to_load_from_cache

        found = try_to_load_from_cache(ref, "config.json")
    except Exception:  # a malformed id: from_pretrained says why when it loads
        return None
    return found if isinstance(found, str) else None


HUB_ANSWER_S = 3.0


def hub_offline() -> bool:
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE)


def hub_unreachable(timeout_s: float = HUB_ANSWER_S) -> str | None:
    """Why the hub's endpoint (HF_ENDPOINT) cannot be reached, asked once with one TCP connection
    (name lookup included) bounded by `timeout_s`; None where it answers."""
    from huggingface_hub import constants

    url = urlsplit(constants.ENDPOINT)
    host = url.hostname or ""
    port = url.port or (443 if url.scheme == "https" else 80)
    outcome: list[str | None] = []

    def connect() -> None:
        try:
            socket.create_connection((host, port), timeout=timeout_s).close()
            outcome.append(None)
        except OSError as exc:
            outcome.append(exc.strerror or str(exc) or type(exc).__name__)

    asking = threading.Thread(target=connect, name="hub-reachable", daemon=True)
    asking.start()
    asking.join(timeout_s)
    if not outcome:
        return f"{host}:{port} did not answer within {timeout_s:.0f} s"
    return None if outcome[0] is None else f"{host}:{port}: {outcome[0]}"


class HubSource:
    key = "hf"
    option_keys: tuple[str, ...] = ()

    def check_options(self, options) -> tuple[str, str] | None:
        return None  # no keys of its own

    def claims(self, text: str) -> bool:
        return False  # no form tells a hub id apart: core.models.BARE_STRING_SOURCE names the hub

    def check_ref(self, ref: str) -> str | None:
        return None  # only the hub knows; loading says why not

    def preload(self, entry) -> tuple[str, ...]:
        return (TRANSFORMERS_CLASSES,)

    def loading_from(self, entry) -> str:
        if cached_config(entry.ref) is not None:
            return "from the local cache"
        return "downloading from the hub (retries: worker.log)"

    def known_task(self, ref: str) -> str | None:
        return None

    def preflight(self, entry) -> str | None:
        """A hub id the hub cannot serve now must be in the local cache; online only the hub
        knows."""
        path = cached_config(entry.ref)
        if path is None:
            why = "the hub is offline (HF_HUB_OFFLINE=1)" if hub_offline() else None
            if why is None:
                unreachable = hub_unreachable()
                why = f"the hub cannot be reached ({unreachable})" if unreachable else None
            if why is None:
                return None
            return (f"hub model {entry.ref!r} is not in the local Hugging Face cache and {why}; "
                    f"download it with `hf download {entry.ref}` on a machine with network, or "
                    "use a local folder (`path:`)")
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

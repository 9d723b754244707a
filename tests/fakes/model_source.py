"""A model source that is only this module: what adding a source takes (plus one SOURCE_MODULES
line). Its models are named `zoo/<task>`, and their task is known before loading."""

from __future__ import annotations

from energy_console.core.models.base import LoadedModel
from energy_console.core.spec.tasks import TASKS

PREFIX = "zoo/"


class ZooSource:
    key = "zoo"
    option_keys: tuple[str, ...] = ()

    def check_options(self, options) -> tuple[str, str] | None:
        return None  # no keys of its own

    def claims(self, text: str) -> bool:
        return text.startswith(PREFIX)

    def check_ref(self, ref: str) -> str | None:
        task = ref.removeprefix(PREFIX)
        return None if task in TASKS else f"no zoo model {ref!r}; zoo/<one of {', '.join(TASKS)}>"

    def loading_from(self, entry) -> str:
        return "building it"

    def known_task(self, ref: str) -> str | None:
        return ref.removeprefix(PREFIX)

    def load(self, entry, device: str) -> LoadedModel:
        return LoadedModel(module=None, task=self.known_task(entry.ref), make_inputs=dict)


SOURCE = ZooSource()

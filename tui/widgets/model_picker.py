"""The models to measure: the profile's first, ticked, in its order; then demo models, those named
in saved profiles and those added, each with its workload and dataset."""

from __future__ import annotations

from typing import Any

from energy_console.tui.format import shown_content
from energy_console.tui.selection import model_label, model_prompt, with_dataset
from energy_console.tui.setup_choices import in_order, numbered_key, replaced
from energy_console.tui.widgets.tick_list import TickList
from textual.content import Content
from textual.widgets.selection_list import Selection


class ModelPicker(TickList):
    """Each option's value and id is its key: the model's label, numbered where another entry has
    the same label."""

    def __init__(self, catalogue: list[Any], chosen: list[Any], *, id: str) -> None:
        self.entries: dict[str, Any] = {}  # list key -> profile model entry
        self.order: list[Any] = list(chosen)  # entries in the order the profile lists them
        super().__init__(*self.new_options([*chosen, *catalogue], chosen), id=id)

    def key(self, entry: Any) -> str:
        """The list key of a model entry (a new one for an entry not listed yet)."""
        for key, known in self.entries.items():
            if known == entry:
                return key
        return numbered_key(model_label(entry), self.entries)

    def new_options(self, entries: list[Any], chosen: list[Any]) -> list[Selection[str]]:
        """Options for the entries not listed yet (now listed); those in `chosen` ticked."""
        options = []
        for entry in entries:
            if entry in self.entries.values():
                continue
            key = self.key(entry)
            self.entries[key] = entry
            options.append(Selection(self._prompt(key), key, entry in chosen, id=key))
        return options

    def _prompt(self, key: str) -> Content:
        number = key[len(model_label(self.entries[key])):]  # " #2" where the label is taken
        return shown_content(model_prompt(self.entries[key]) + number)

    def show(self, models: list[Any]) -> None:
        """Tick exactly `models` (listing those new to the list), listed first in the order
        given, the others after them; the list scrolled to its top."""
        self.order = list(models)
        self.new_options(models, models)
        first = [self.key(entry) for entry in models]
        keys = first + [str(o.id) for o in self.options if str(o.id) not in first]
        self.clear_options()
        self.add_options(Selection(self._prompt(k), k, k in first, id=k) for k in keys)
        self.highlighted = 0 if keys else None
        self.scroll_home(animate=False)

    def add(self, entry: Any) -> str:
        """List (where new) and tick one model, highlighted and scrolled into view; its key."""
        self.add_options(self.new_options([entry], [entry]))
        key = self.key(entry)
        self.select(key)
        self.highlighted = self.get_option_index(key)
        self.call_after_refresh(self.scroll_to_highlight)  # once the new row has its place
        return key

    def chosen_entries(self) -> list[Any]:
        """The ticked models, those the profile listed in its order first."""
        order = [self.key(entry) for entry in self.order]
        return [self.entries[k] for k in in_order(self.selected, order)]

    def set_dataset(self, key: str, path: str) -> None:
        """Give the model listed as `key` a dataset (blank: none). Its row is relabelled in
        place; where the model without a dataset is listed already, that row stands for it."""
        old = self.entries[key]
        entry = with_dataset(old, path)
        if entry == old:
            return
        ticked = set(self.selected)
        del self.entries[key]
        same = next((k for k, known in self.entries.items() if known == entry), None)
        new_key = same or self.key(entry)
        self.entries[new_key] = entry
        self.order = replaced(self.order, old, entry)
        if key in ticked:
            ticked = (ticked - {key}) | {new_key}
        keys = [str(o.id) for o in self.options]  # each option's id is its key
        keys = [new_key if k == key else k for k in keys if not (k == key and same)]
        self.clear_options()
        self.add_options(Selection(self._prompt(k), k, k in ticked, id=k) for k in keys)
        self.highlighted = keys.index(new_key)

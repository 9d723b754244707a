"""The techniques to measure: the profile's first, ticked, in its order (chains included), then the
rest of the catalogue, one row each with its parameters; entries the catalogue rows cannot hold
(chains, a technique listed again with other parameters) are kept as loaded."""

from __future__ import annotations

from typing import Any

from energy_console.core.compression import techniques
from energy_console.tui.format import shown_content
from energy_console.tui.selection import technique_entry, unavailable_reason
from energy_console.tui.setup_choices import (
    entry_key,
    entry_prompt,
    in_order,
    technique_prompt,
    technique_rows,
)
from energy_console.tui.widgets.tick_list import TickList
from textual.widgets.selection_list import Selection


class TechniquePicker(TickList):
    """A catalogue row's key is the technique's name; another entry's key is its content."""

    def __init__(self, chosen: list[Any], device: str, *, id: str) -> None:
        self.params: dict[str, dict[str, Any]] = {}  # catalogue technique -> parameters set
        self.entries: dict[str, Any] = {}  # list key -> an entry the catalogue rows cannot hold
        self.order: list[str] = []  # list keys in the order the profile lists them
        self._take(chosen)
        super().__init__(*self._rows(list(self.entries), device), id=id)

    def _take(self, chosen: list[Any]) -> None:
        """Take in a profile's technique entries."""
        rows = technique_rows(chosen)
        self.params, self.order = rows.params, rows.order
        self.entries.update(rows.entries)

    def _rows(self, entry_keys: list[str], device: str) -> list[Selection[str]]:
        """Every row: the profile's entries in its order, the catalogue, then `entry_keys`."""
        catalogue = techniques()
        keys = [*self.order, *(k for k in [*catalogue, *entry_keys] if k not in self.order)]
        options = []
        for key in keys:
            ticked = key in self.order
            if key in catalogue:
                reason = unavailable_reason(catalogue[key], device)
                prompt = technique_prompt(key, catalogue[key], reason)
            else:
                reason, prompt = None, entry_prompt(self.entries[key])
            options.append(Selection(shown_content(prompt), key, ticked, id=key,
                                     disabled=bool(reason) and not ticked))
        return options

    def _entry_options(self, keys: list[str]) -> list[Selection[str]]:
        return [Selection(shown_content(entry_prompt(self.entries[key])), key, key in self.order,
                          id=key) for key in keys]

    def show(self, chosen: list[Any], device: str) -> None:
        """Tick exactly the entries `chosen` (listing those new to the list), listed first in
        their order; the list scrolled to its top."""
        listed = [str(o.id) for o in self.options if str(o.id) in self.entries]
        self._take(chosen)
        self.clear_options()
        self.add_options(self._rows(listed + [k for k in self.entries if k not in listed],
                                       device))
        self.highlighted = 0
        self.scroll_home(animate=False)

    def show_availability(self, device: str) -> None:
        """Techniques that cannot run on `device`: the reason beside them, and not tickable (one
        already ticked stays tickable, so it can be unticked)."""
        ticked = set(self.selected) | set(self.order)
        for name, technique in techniques().items():
            reason = unavailable_reason(technique, device)
            self.replace_option_prompt(name, shown_content(technique_prompt(name, technique,
                                                                            reason)))
            if reason and name not in ticked:
                self.disable_option(name)
            else:
                self.enable_option(name)

    def chosen_entries(self) -> list[Any]:
        """The ticked techniques as profile entries, those the profile listed in its order
        first."""
        return [self.entries[k] if k in self.entries else
                technique_entry(k, self.params.get(k, {}))
                for k in in_order(self.selected, self.order)]

    def put(self, entry: Any, replacing: str | None = None) -> str:
        """List and tick an entry the catalogue rows cannot hold, highlighted and scrolled into
        view; with `replacing`, it takes that entry's place in the order. Its key."""
        key = entry_key(entry)
        if key not in self.entries:
            self.entries[key] = entry
            self.add_options(self._entry_options([key]))
        if replacing and replacing != key:
            if replacing in self.order:
                self.order[self.order.index(replacing)] = key
            self.remove_option(replacing)
            del self.entries[replacing]
        self.select(key)
        self.highlighted = self.get_option_index(key)
        self.call_after_refresh(self.scroll_to_highlight)  # once the new row has its place
        return key

    def set_param(self, technique: str, name: str, value: Any) -> None:
        """Set a catalogue technique's parameter (checked already); None resets it."""
        values = self.params.setdefault(technique, {})
        if value is None:
            values.pop(name, None)
        else:
            values[name] = value

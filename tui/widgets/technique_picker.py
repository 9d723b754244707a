"""The techniques to measure: the catalogue, one row each with its parameters, and entries those
rows cannot hold (chains, a technique listed again with other parameters), kept as loaded."""

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
        new = self._take(chosen)
        options = []
        for name, technique in techniques().items():
            ticked = name in self.order
            reason = unavailable_reason(technique, device)
            options.append(Selection(shown_content(technique_prompt(name, technique, reason)), name,
                                     ticked, id=name, disabled=bool(reason) and not ticked))
        super().__init__(*options, *self._entry_options(new), id=id)

    def _take(self, chosen: list[Any]) -> list[str]:
        """Take in a profile's technique entries; returns the keys of entries new to the list."""
        rows = technique_rows(chosen)
        new = [key for key in rows.entries if key not in self.entries]
        self.params, self.order = rows.params, rows.order
        self.entries.update(rows.entries)
        return new

    def _entry_options(self, keys: list[str]) -> list[Selection[str]]:
        return [Selection(shown_content(entry_prompt(self.entries[key])), key, key in self.order,
                          id=key) for key in keys]

    def show(self, chosen: list[Any], device: str) -> None:
        """Tick exactly the entries `chosen` (listing those new to the list)."""
        new = self._take(chosen)
        self.add_options(self._entry_options(new))
        self.deselect_all()
        self.show_availability(device)
        for key in self.order:
            self.select(key)

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

    def put(self, entry: Any, replacing: str | None = None) -> None:
        """List and tick an entry the catalogue rows cannot hold; with `replacing`, it takes
        that entry's place in the order."""
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

    def set_param(self, technique: str, name: str, value: Any) -> None:
        """Set a catalogue technique's parameter (checked already); None resets it."""
        values = self.params.setdefault(technique, {})
        if value is None:
            values.pop(name, None)
        else:
            values[name] = value

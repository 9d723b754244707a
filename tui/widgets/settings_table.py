"""Inputs, protocol and device of the setup screen, as rows edited one at a time."""

from __future__ import annotations

from energy_console.tui.selection import PROTOCOL_FIELDS, FormValues
from energy_console.tui.widgets.field_table import FieldTable

NUMBER_LIST_HINT = "whole numbers separated by commas"
SETTINGS: tuple[tuple[str, str, str], ...] = (  # form key, label, what to type
    ("batch_sizes", "Batch sizes", f"{NUMBER_LIST_HINT}, e.g. 1, 8"),
    ("sequence_lengths", "Sequence lengths", f"{NUMBER_LIST_HINT}, e.g. 128, 512 (text models)"),
    ("resolutions", "Resolutions", f"{NUMBER_LIST_HINT}, e.g. 224 (image models)"),
    *((key, label, f"{'a whole number' if kind is int else 'a number'}; blank for the default")
      for key, label, kind in PROTOCOL_FIELDS),
    ("device", "Device", "auto, cpu, cuda or cuda:N"),
    ("name", "Profile name", "letters, digits, . _ -"),
)
FORM_FIELDS = ("batch_sizes", "sequence_lengths", "resolutions", "device", "name")


def setting_texts(form: FormValues) -> dict[str, str]:
    """Each setting's text as typed (a protocol field's blank: its default), by form key."""
    texts = {key: getattr(form, key) for key in FORM_FIELDS}
    texts.update({key: form.protocol.get(key, "") for key, _, _ in PROTOCOL_FIELDS})
    return texts


class SettingsTable(FieldTable):
    def __init__(self, form: FormValues, *, id: str) -> None:
        super().__init__(id=id)
        self.texts = setting_texts(form)  # form key -> text as typed

    def show(self, form: FormValues | None = None) -> None:
        """Every row (with a form: its values)."""
        if form is not None:
            self.texts = setting_texts(form)
        self.show_rows((key, label, self.texts[key], "") for key, label, _ in SETTINGS)

    def set(self, key: str, text: str) -> None:
        self.texts[key] = text
        self.set_text(key, text)

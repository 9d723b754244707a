"""Small modal screens: quit, help, name a profile, pick a profile or a session."""

from __future__ import annotations

from pathlib import Path

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, OptionList, Static
from textual.widgets.option_list import Option

HELP_TEXT = """\
energy-console measures what compressing a model does to its energy, speed,
size and quality.

Setup     ctrl+r start    ctrl+s save profile    ctrl+o open profile
          space ticks a model or technique
          Enter in the model box adds a hub id or a local folder
Live      x stop the session    c cancel the current run
          r results table       o open another session
Results   select a column header to sort by it (again: reverse)
Anywhere  ? help    ctrl+p command palette
          q quit (asks whether to stop a running session)

The measurement runs in its own process: quitting the console or losing
the SSH connection does not stop it; `energy-console attach` reopens it.
Figures marked "est" or "estimated" come from a model of the hardware,
not from a sensor; "meas" marks a sensor that measures.
"""


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,question_mark", "dismiss(None)", "Close")]

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog help"):
            yield Static(HELP_TEXT)
            yield Label("escape closes", classes="hint")


class QuitScreen(ModalScreen[str | None]):
    """Returns "stop", "leave", or None to stay."""

    BINDINGS = [
        Binding("s", "choose('stop')", "Stop it"),
        Binding("l", "choose('leave')", "Leave it running"),
        Binding("escape", "choose(None)", "Stay"),
    ]

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label("A session is still running. Quit the console and…")
            with Horizontal(classes="buttons"):
                yield Button("Stop it [s]", id="stop", variant="error")
                yield Button("Leave it running [l]", id="leave", variant="primary")
                yield Button("Stay [esc]", id="stay")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(None if event.button.id == "stay" else event.button.id)

    def action_choose(self, choice: str | None) -> None:
        self.dismiss(choice)


class NameScreen(ModalScreen[str | None]):
    """Asks for a profile name; returns it, or None when cancelled."""

    BINDINGS = [Binding("escape", "dismiss(None)", "Cancel")]

    def __init__(self, prompt: str, value: str):
        super().__init__()
        self.prompt, self.value = prompt, value

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(self.prompt)
            yield Input(self.value, id="name")
            yield Label("Enter saves, escape cancels", classes="hint")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.dismiss(event.value.strip() or None)


class PickScreen(ModalScreen[Path | None]):
    """Pick one path from a list (profiles or sessions), newest first."""

    BINDINGS = [Binding("escape", "dismiss(None)", "Cancel")]

    def __init__(self, title: str, paths: list[Path], empty: str):
        super().__init__()
        self.title_text, self.paths, self.empty = title, paths, empty

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog pick"):
            yield Label(self.title_text)
            if self.paths:
                yield OptionList(*[Option(p.name, id=str(i)) for i, p in enumerate(self.paths)])
            else:
                yield Label(self.empty, classes="hint")
            yield Label("Enter opens, escape cancels", classes="hint")

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(self.paths[int(event.option.id or 0)])

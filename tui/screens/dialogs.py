"""Small modal screens: quit, help, ask for a value, add a model, pick a profile or a session."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, OptionList, Select, Static
from textual.widgets.option_list import Option

HELP_TEXT = """\
energy-console measures what compressing a model does to its energy, speed,
size and quality.

Setup     ctrl+r start    ctrl+s save profile    ctrl+o open profile
          space ticks a model or technique, a adds a hub id or a folder
          Enter on a setting or a technique parameter edits it
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


class AskScreen(ModalScreen[str | None]):
    """Asks for one line of text; returns it stripped, or None when cancelled.

    `check` returns what is wrong with an answer (the dialog stays open and says so) or None.
    """

    BINDINGS = [Binding("escape", "dismiss(None)", "Cancel")]

    def __init__(self, prompt: str, value: str, hint: str = "Enter saves, escape cancels",
                 check: Callable[[str], str | None] | None = None):
        super().__init__()
        self.prompt, self.value, self.hint, self.check = prompt, value, hint, check

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog ask"):
            yield Label(self.prompt)
            yield Input(self.value, id="answer")
            yield Label("", id="problem")
            yield Label(self.hint, classes="hint")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        answer = event.value.strip()
        problem = self.check(answer) if self.check else None
        if problem:
            self.query_one("#problem", Label).update(f"✗ {problem}")
            return
        self.dismiss(answer)


class AddModelScreen(ModalScreen[bool]):
    """Type a hub id or a local folder and optionally its task; `add` returns a problem or None."""

    BINDINGS = [Binding("escape", "dismiss(False)", "Cancel")]

    def __init__(self, tasks: Iterable[str], add: Callable[[str, str | None], str | None]):
        super().__init__()
        self.tasks, self.add = tuple(tasks), add

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog ask"):
            yield Label("Add a model: a hub id (org/name) or a local folder")
            yield Input(placeholder="hub id or folder", id="model-ref")
            yield Select([(t, t) for t in self.tasks], prompt="task: auto", id="model-task")
            yield Label("", id="problem")
            yield Label("Enter adds and ticks it, escape cancels", classes="hint")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        task = self.query_one("#model-task", Select)
        problem = self.add(event.value, None if task.is_blank() else str(task.value))
        if problem:
            self.query_one("#problem", Label).update(f"✗ {problem}")
            return
        self.dismiss(True)


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

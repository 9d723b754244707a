"""Small modal screens: quit, help, ask for a value, choose one, add a model, pick a profile or a
session."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

from energy_console.tui.format import attach_command, shown, shown_content
from energy_console.tui.keys import ScreenKeys, key_lines, screen_keys
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.screen import ModalScreen, Screen
from textual.widgets import Button, Input, Label, OptionList, Select, Static
from textual.widgets.button import ButtonVariant
from textual.widgets.option_list import Option

INTRO = """\
energy-console measures what compressing a model does to its energy, speed,
size and quality."""
FIGURES = """\
Figures marked "est" or "estimated" come from a model of the hardware,
not from a sensor; "meas" marks a sensor that measures."""


def leaving_note(session_dir: Path | None) -> str:
    """What quitting does to a measurement, and the exact command that comes back to it."""
    which = "this session" if session_dir else "the newest session"
    return ("The measurement runs in its own process: quitting the console (q, then\n"
            "\"Leave it running\") or losing the SSH connection does not stop it;\n"
            f"this reopens {which}:\n  {attach_command(session_dir)}")


class HelpScreen(ModalScreen[None]):
    """The keys of the screen it opens from (its live bindings and the app's), its HELP tips,
    and what a figure means."""

    BINDINGS = [Binding("escape,q,question_mark", "dismiss(None)", "Close")]

    def __init__(self, keys: ScreenKeys, tips: str | None = None,
                 session_dir: Path | None = None) -> None:
        super().__init__()
        self.keys, self.tips, self.session_dir = keys, tips, session_dir

    @classmethod
    def of(cls, screen: Screen) -> HelpScreen:
        """Help on `screen`; a screen of one session (live, results...) names its folder."""
        return cls(screen_keys(screen), screen.HELP, getattr(screen, "session_dir", None))

    def help_text(self) -> str:
        lines = [INTRO, "", "This screen", *key_lines(self.keys.here + self.keys.focused)]
        if self.tips:
            lines += [f"  {tip}" for tip in self.tips.splitlines()]
        lines += ["Anywhere", *key_lines(self.keys.anywhere), "",
                  leaving_note(self.session_dir), FIGURES]
        return "\n".join(lines)

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog help"):
            yield Static(shown(self.help_text(), one_line=False))
            yield Label("escape closes", classes="hint")


class QuitScreen(ModalScreen[str | None]):
    """Returns "stop", "leave", or None to stay. Enter leaves the session running: stopping a
    measurement takes its own key (s) or a deliberate move to its button."""

    AUTO_FOCUS = "#leave"

    # (returned, key, label, button variant)
    CHOICES: tuple[tuple[str | None, str, str, ButtonVariant], ...] = (
        ("stop", "s", "Stop it", "error"), ("leave", "l", "Leave it running", "primary"),
        (None, "escape", "Stay", "default"))
    BINDINGS = [Binding(key, f"choose({choice!r})", label) for choice, key, label, _ in CHOICES]

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label("A session is still running. Quit the console and…")
            with Horizontal(classes="buttons"):
                for (choice, _, label, variant), binding in zip(self.CHOICES, self.BINDINGS,
                                                                strict=True):
                    # plain Content: "[s]" read as markup would be a strikethrough tag
                    # BINDINGS above holds Binding objects only, not the tuples textual also allows
                    key = self.app.get_key_display(binding)  # type: ignore[arg-type]
                    text = Content(f"{label} [{key}]")
                    yield Button(text, id=choice or "stay", variant=variant)

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
            # a technique's help may hold [brackets]
            yield Label(shown(self.prompt, one_line=False))
            yield Input(self.value, id="answer")
            yield Label("", id="problem", markup=False)
            yield Label(shown(self.hint, one_line=False), classes="hint")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        answer = event.value.strip()
        problem = self.check(answer) if self.check else None
        if problem:
            self.query_one("#problem", Label).update(shown(f"✗ {problem}"))
            return
        self.dismiss(answer)


class AddModelScreen(ModalScreen[bool]):
    """Pick a source (auto: a folder or a hub id) and type the model, optionally its task;
    `add(text, task, source)` returns a problem or None."""

    BINDINGS = [Binding("escape", "dismiss(False)", "Cancel")]
    PLACEHOLDERS = {"factory": "package.module:callable", "onnx": "model.onnx",
                    "torchvision": "resnet18", "timm": "mixer_b16_224", "path": "folder",
                    "hf": "org/name", "demo": "demo/tiny-bert-random"}

    def __init__(self, tasks: Iterable[str], sources: Iterable[str],
                 add: Callable[[str, str | None, str | None], str | None]):
        super().__init__()
        self.tasks, self.sources, self.add = tuple(tasks), tuple(sources), add

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog ask"):
            yield Label("Add a model: a hub id (org/name), a local folder, or pick its source")
            yield Select([(f"source: {s}", s) for s in self.sources], prompt="source: auto",
                         id="model-source")
            yield Input(placeholder="hub id or folder", id="model-ref")
            yield Select([(t, t) for t in self.tasks], prompt="task: auto", id="model-task")
            yield Label("", id="problem", markup=False)
            yield Label("Enter adds and ticks it, escape cancels; a factory's args and weights "
                        "are set in the profile (docs/profiles.md)", classes="hint")

    def on_mount(self) -> None:
        self.query_one("#model-ref", Input).focus()  # type at once; the source is a tab away

    def on_select_changed(self, event: Select.Changed) -> None:
        if event.select.id == "model-source":
            source = None if event.select.is_blank() else str(event.value)
            self.query_one("#model-ref", Input).placeholder = self.PLACEHOLDERS.get(
                source or "", "hub id or folder")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        task, source = self.query_one("#model-task", Select), self.query_one("#model-source",
                                                                              Select)
        problem = self.add(event.value, None if task.is_blank() else str(task.value),
                           None if source.is_blank() else str(source.value))
        if problem:
            self.query_one("#problem", Label).update(shown(f"✗ {problem}"))
            return
        self.dismiss(True)


class PickScreen(ModalScreen[Path | None]):
    """Pick one path from a list (profiles or sessions). A path with a problem (a profile that
    does not load) is listed with it and cannot be picked."""

    BINDINGS = [Binding("escape", "dismiss(None)", "Cancel")]

    def __init__(self, title: str, paths: list[Path], empty: str,
                 problems: Mapping[Path, str] | None = None):
        super().__init__()
        self.title_text, self.paths, self.empty = title, paths, empty
        self.problems = dict(problems or {})

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog pick"):
            yield Label(shown(self.title_text))
            if self.paths:
                yield OptionList(*[self._option(i, p) for i, p in enumerate(self.paths)])
            else:
                yield Label(shown(self.empty), classes="hint")
            yield Label("Enter opens, escape cancels", classes="hint")

    def _option(self, index: int, path: Path) -> Option:
        problem = self.problems.get(path)
        if problem is None:
            return Option(shown_content(path.name), id=str(index))
        # ProfileError's text starts with the file: the list names it already
        where = problem.removeprefix(str(path)).lstrip(", :")
        return Option(shown_content(f"{path.name}  ✗ {where}"), id=str(index), disabled=True)

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(self.paths[int(event.option.id or 0)])


class ChooseScreen(ModalScreen[str | None]):
    """Choose one of `choices` ((value, what it is) pairs), the `current` one highlighted;
    returns the value, or None when cancelled."""

    BINDINGS = [Binding("escape", "dismiss(None)", "Cancel")]

    def __init__(self, title: str, choices: list[tuple[str, str]], current: str,
                 hint: str = "Enter chooses, escape cancels"):
        super().__init__()
        self.title_text, self.choices, self.current, self.hint = title, choices, current, hint

    def compose(self) -> ComposeResult:
        width = max(len(value) for value, _ in self.choices)
        with Vertical(classes="dialog pick"):
            yield Label(shown(self.title_text))
            yield OptionList(*[Option(shown_content(f"{value:<{width}}  {what}"), id=value)
                               for value, what in self.choices], id="choices")
            yield Label(shown(self.hint, one_line=False), classes="hint")

    def on_mount(self) -> None:
        options = self.query_one(OptionList)
        values = [value for value, _ in self.choices]
        if self.current in values:
            options.highlighted = values.index(self.current)

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)

"""What to measure: models, techniques and their parameters, input sizes, protocol, device.

Every change rebuilds the profile through core.profile, so the run count, the duration estimate
and any error message are what `energy-console run` would say about the same profile.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import Button, Footer, Input, Label, Select, SelectionList, Static
from textual.widgets.selection_list import Selection

from core.compression import techniques
from core.launch import start_runner
from core.models.base import TASKS
from core.models.demo import DEMO_MODELS
from core.plan import expand
from core.profile import Profile, ProfileError, load_profile, save_profile
from core.results import session_dir_name
from tui import format as fmt
from tui.screens.dialogs import NameScreen, PickScreen
from tui.selection import (
    PROTOCOL_FIELDS,
    FormValues,
    build_profile,
    estimate_duration_s,
    form_from_profile,
    model_entry,
    model_label,
    models_in_profiles,
)
from tui.widgets.tick_list import TickList

DEVICES = ("auto", "cpu", "cuda")
SIZE_FIELDS = (
    ("batch_sizes", "Batch sizes"),
    ("sequence_lengths", "Sequence lengths"),
    ("resolutions", "Resolutions"),
)


class SetupScreen(Screen):
    BINDINGS = [
        Binding("ctrl+r", "start", "Start", id="start"),
        Binding("ctrl+s", "save_profile", "Save profile", id="save_profile"),
        Binding("ctrl+o", "open_profile", "Open profile", id="open_profile"),
        Binding("ctrl+e", "app.open_session", "Sessions", id="open_session"),
    ]

    def __init__(self, profiles_dir: Path, results_root: Path, profile: Profile | None = None):
        super().__init__()
        self.profiles_dir, self.results_root = profiles_dir, results_root
        self.initial = form_from_profile(profile) if profile else FormValues(
            models=[next(iter(DEMO_MODELS))], techniques={"baseline": {}})
        self.model_entries: dict[str, Any] = {}
        self.technique_params: dict[str, dict[str, Any]] = {}
        self.param_errors: dict[tuple[str, str], str] = {}
        self.profile: Profile | None = None

    # ------------------------------------------------------------------ layout
    def compose(self) -> ComposeResult:
        yield Static("energy-console · new session: choose what to measure", id="title")
        with Horizontal(id="columns"):
            with VerticalScroll(id="left"):
                yield Label("Models (space ticks)", classes="section")
                yield TickList(id="models")
                with Horizontal(classes="row"):
                    yield Input(placeholder="hub id/folder ⏎", id="model-ref",
                                compact=True)
                    yield Select([(t, t) for t in TASKS], prompt="task: auto", id="model-task",
                                 compact=True)
                yield Label("Techniques", classes="section")
                yield TickList(*self._technique_options(), id="techniques")
                yield Vertical(id="params")
            with VerticalScroll(id="right"):
                yield Label("Input sizes", classes="section")
                for key, label in SIZE_FIELDS:
                    yield from _field(label, Input(getattr(self.initial, key), id=key,
                                                   compact=True))
                yield Label("Protocol", classes="section")
                for key, label, _ in PROTOCOL_FIELDS:
                    yield from _field(label, Input(self.initial.protocol.get(key, ""), id=key,
                                                   placeholder="default", compact=True))
                yield from _field("Device", Select([(d, d) for d in DEVICES], id="device",
                                                   value=self.initial.device, allow_blank=False,
                                                   compact=True))
                yield from _field("Profile name", Input(self.initial.name, id="name",
                                                        compact=True))
        yield Static("", id="summary")
        with Horizontal(id="actions"):
            yield Button("Start ^r", id="start", variant="success", compact=True)
            yield Button("Save ^s", id="save", compact=True)
            yield Button("Open ^o", id="open", compact=True)
            yield Button("Sessions ^e", id="sessions", compact=True)
        yield Footer()

    def on_mount(self) -> None:
        self.apply_form(self.initial)

    def _technique_options(self) -> list[Selection[str]]:
        options = []
        for name, technique in techniques().items():
            reason = technique.unavailable_reason()
            devices = "/".join(technique.devices)
            prompt = f"{name}  ({technique.family}, {devices})"
            if reason:
                prompt += f": unavailable, {reason}"
            options.append(Selection(prompt, name, False, disabled=bool(reason)))
        return options

    # ------------------------------------------------------------------ form <-> widgets
    def apply_form(self, form: FormValues) -> None:
        """Show a profile's values in the widgets (models it names are added to the list)."""
        models = self.query_one("#models", SelectionList)
        models.clear_options()
        self.model_entries = {}
        for entry in [*DEMO_MODELS, *models_in_profiles(self.profiles_dir), *form.models]:
            self._add_model(entry, selected=entry in form.models)
        known = set(techniques())
        self.technique_params = {n: dict(p) for n, p in form.techniques.items() if n in known}
        chosen = self.query_one("#techniques", SelectionList)
        chosen.deselect_all()
        for name in self.technique_params:
            chosen.select(name)
        for key, _ in SIZE_FIELDS:
            self.query_one(f"#{key}", Input).value = getattr(form, key)
        for key, _, _ in PROTOCOL_FIELDS:
            self.query_one(f"#{key}", Input).value = form.protocol.get(key, "")
        self.query_one("#device", Select).value = form.device
        self.query_one("#name", Input).value = form.name
        self.refresh_summary()

    def _add_model(self, entry: Any, selected: bool) -> None:
        label = model_label(entry)
        models = self.query_one("#models", SelectionList)
        if label in self.model_entries:
            if selected:
                models.select(label)
            return
        self.model_entries[label] = entry
        task = DEMO_MODELS[entry].task if isinstance(entry, str) and entry in DEMO_MODELS else ""
        prompt = f"{label}  {task}".rstrip()
        models.add_option(Selection(prompt, label, selected))

    def current_form(self) -> FormValues:
        chosen = self.query_one("#techniques", SelectionList).selected
        models = self.query_one("#models", SelectionList).selected
        return FormValues(
            name=self.query_one("#name", Input).value,
            models=[self.model_entries[k] for k in models],
            techniques={n: dict(self.technique_params.get(n, {})) for n in chosen},
            batch_sizes=self.query_one("#batch_sizes", Input).value,
            sequence_lengths=self.query_one("#sequence_lengths", Input).value,
            resolutions=self.query_one("#resolutions", Input).value,
            device=str(self.query_one("#device", Select).value),
            protocol={k: self.query_one(f"#{k}", Input).value for k, _, _ in PROTOCOL_FIELDS},
        )

    def refresh_summary(self) -> None:
        summary = self.query_one("#summary", Static)
        self.profile = None
        if self.param_errors:
            (technique, _), problem = next(iter(self.param_errors.items()))
            summary.update(f"✗ {technique}: {problem}")
            return
        try:
            profile = build_profile(self.current_form())
        except ProfileError as exc:
            summary.update(f"✗ {exc.key}: {exc.problem}" if exc.key else f"✗ {exc.problem}")
            return
        specs = expand(profile)
        estimate = estimate_duration_s(specs, profile.protocol.idle_seconds)
        self.profile = profile
        summary.update(f"{len(specs)} runs · about {fmt.duration(estimate)} (rough estimate) · "
                       f"{len(profile.models)} models × {len(profile.techniques)} techniques")

    # ------------------------------------------------------------------ events
    @on(Input.Changed)
    @on(Select.Changed)
    @on(SelectionList.SelectedChanged)
    def _changed(self, event) -> None:
        source = getattr(event, "input", None)
        if source is not None and (source.id == "model-ref" or source.has_class("param")):
            return
        self.refresh_summary()

    @on(Input.Submitted, "#model-ref")
    def _add_typed_model(self, event: Input.Submitted) -> None:
        task = self.query_one("#model-task", Select).value
        try:
            entry = model_entry(event.value, None if task is Select.BLANK else str(task))
        except ProfileError as exc:
            self.notify(exc.problem, severity="error")
            return
        self._add_model(entry, selected=True)
        event.input.value = ""
        self.refresh_summary()

    @on(SelectionList.SelectionHighlighted, "#techniques")
    def _show_params(self, event: SelectionList.SelectionHighlighted) -> None:
        name = event.selection.value
        box = self.query_one("#params", Vertical)
        box.remove_children()
        params = techniques()[name].params
        if not params:
            return
        widgets: list = [Label(f"{name} parameters", classes="section")]
        values = self.technique_params.get(name, {})
        for param in params:
            hint = f"default {param.default}"
            if param.choices:
                hint += f"; one of {', '.join(map(str, param.choices))}"
            text = str(values[param.name]) if param.name in values else ""
            widgets += _field(param.name, Input(text, placeholder=hint, compact=True,
                                                name=f"{name}:{param.name}",
                                                classes="param", tooltip=param.help))
        box.mount_all(widgets)

    @on(Input.Changed, ".param")
    def _param_changed(self, event: Input.Changed) -> None:
        technique, _, name = (event.input.name or "").partition(":")
        param = next(p for p in techniques()[technique].params if p.name == name)
        values = self.technique_params.setdefault(technique, {})
        self.param_errors.pop((technique, name), None)
        text = event.value.strip()
        try:
            if text:
                values[name] = _typed(param.type, text)
            else:
                values.pop(name, None)
        except ValueError:
            self.param_errors[(technique, name)] = (
                f"{name} must be a {param.type.__name__}, got {text!r}")
        self.refresh_summary()

    @on(Button.Pressed)
    def _button(self, event: Button.Pressed) -> None:
        actions = {"start": self.action_start, "save": self.action_save_profile,
                   "open": self.action_open_profile, "sessions": self.app.action_open_session}
        actions[event.button.id or ""]()

    # ------------------------------------------------------------------ actions
    def action_start(self) -> None:
        self.refresh_summary()
        if self.profile is None:
            self.notify("fix the problem shown above Start first", severity="error")
            return
        session_dir = self.results_root / session_dir_name(self.profile.name)
        profile_path = save_profile(self.profile, session_dir / "profile.yaml")
        pid = start_runner(profile_path, session_dir)
        from tui.screens.live import LiveScreen

        self.app.push_screen(LiveScreen(session_dir, runner_pid=pid))

    def action_save_profile(self) -> None:
        def save(name: str | None) -> None:
            if not name:
                return
            self.query_one("#name", Input).value = name
            self.refresh_summary()
            if self.profile is None:
                self.notify("not saved: fix the problem shown above Start", severity="error")
                return
            path = save_profile(self.profile, self.profiles_dir / f"{self.profile.name}.yaml")
            self.notify(f"saved {path}")

        self.app.push_screen(NameScreen("Save the profile as profiles/<name>.yaml; name:",
                                        self.query_one("#name", Input).value), save)

    def action_open_profile(self) -> None:
        def open_(path: Path | None) -> None:
            if path is not None:
                self.open_profile(path)

        paths = sorted(self.profiles_dir.glob("*.yaml")) if self.profiles_dir.is_dir() else []
        self.app.push_screen(PickScreen("Open a profile", paths,
                                        f"no profiles in {self.profiles_dir}/ yet"), open_)

    def open_profile(self, path: Path) -> None:
        try:
            profile = load_profile(path)
        except ProfileError as exc:
            self.notify(str(exc), severity="error", timeout=10)
            return
        self.apply_form(form_from_profile(profile))
        self.notify(f"opened {path}")


def _field(label: str, widget) -> list:
    return [Horizontal(Label(label, classes="field-label"), widget, classes="row")]


def _typed(kind: type, text: str) -> Any:
    if kind is bool:
        if text.lower() not in ("true", "false"):
            raise ValueError(text)
        return text.lower() == "true"
    return kind(text)

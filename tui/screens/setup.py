"""What to measure: models, techniques and their parameters, input sizes, protocol, device.

Every change rebuilds the profile through core.profile, so the run count, the duration estimate
and any error message are what `energy-console run` would say about the same profile. Settings and
technique parameters are rows of a table edited one at a time, and the run count and the models of
saved profiles arrive just after the first paint: that keeps the screen quick to open.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from energy_console.core.compression import Param, techniques
from energy_console.core.launch import start_runner
from energy_console.core.models.base import TASKS
from energy_console.core.models.demo import DEMO_MODELS
from energy_console.core.plan import expand
from energy_console.core.profile import Profile, ProfileError, load_profile, save_profile
from energy_console.core.results import session_dir_name
from energy_console.tui import format as fmt
from energy_console.tui.keys import action_links, screen_keys
from energy_console.tui.screens.dialogs import AddModelScreen, AskScreen, PickScreen
from energy_console.tui.selection import (
    PROTOCOL_FIELDS,
    FormValues,
    build_profile,
    estimate_duration_s,
    form_from_profile,
    known_task,
    model_entry,
    model_label,
    models_in_profiles,
)
from energy_console.tui.widgets.field_table import FieldTable
from energy_console.tui.widgets.tick_list import TickList
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Label, SelectionList, Static
from textual.widgets.selection_list import Selection

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
class SetupScreen(Screen):
    AUTO_FOCUS = "#models"
    BINDINGS = [
        Binding("ctrl+r", "start", "Start", id="start"),
        Binding("ctrl+s", "save_profile", "Save", id="save_profile"),
        Binding("ctrl+o", "open_profile", "Open", id="open_profile"),
        Binding("ctrl+e", "app.open_session", "Sessions", id="open_session"),
        Binding("a", "add_model", "Add model", id="add_model"),
    ]
    HELP = ("space ticks a model or technique\n"
            "Enter on a setting or a technique parameter edits it")

    def __init__(self, profiles_dir: Path, results_root: Path, profile: Profile | None = None):
        super().__init__()
        self.profiles_dir, self.results_root = profiles_dir, results_root
        initial = form_from_profile(profile) if profile else FormValues(
            models=[next(iter(DEMO_MODELS))], techniques={"baseline": {}})
        self.initial_models = initial.models
        self.model_entries: dict[str, Any] = {}  # list label -> profile model entry
        self.fields: dict[str, str] = {}  # settings key -> text as typed
        self.technique_params: dict[str, dict[str, Any]] = {}
        self.shown_params: str | None = None  # the technique whose parameters the table shows
        self.profile: Profile | None = None
        self._set_form(initial)

    # ------------------------------------------------------------------ layout
    def compose(self) -> ComposeResult:
        yield Static("energy-console · new session: choose what to measure", id="title")
        with Horizontal(id="columns"):
            with VerticalScroll(id="left", can_focus=False):
                yield Label("Models (space ticks)", classes="section")
                yield TickList(*self._model_options([*DEMO_MODELS, *self.initial_models],
                                                     self.initial_models), id="models")
                yield Label("Techniques", classes="section")
                yield TickList(*self._technique_options(), id="techniques")
                yield Vertical(id="params")
            with VerticalScroll(id="right", can_focus=False):
                yield Label("Inputs, protocol, device (⏎ edits)", classes="section")
                yield FieldTable(id="settings")
        yield Static("counting runs…", id="summary")
        yield Static(id="actions")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#actions", Static).update(action_links(screen_keys(self).here))
        self._show_settings()
        self.call_after_refresh(self._after_first_paint)

    def _after_first_paint(self) -> None:
        """Models named in saved profiles (reads every profile) and the run count."""
        models = self.query_one("#models", SelectionList)
        for selection in self._model_options(models_in_profiles(self.profiles_dir), []):
            models.add_option(selection)
        self.refresh_summary()

    def _model_options(self, entries: list[Any], chosen: list[Any]) -> list[Selection[str]]:
        """Options for the entries not listed yet; those in `chosen` ticked."""
        options = []
        for entry in entries:
            label = model_label(entry)
            if label in self.model_entries:
                continue
            self.model_entries[label] = entry
            task = known_task(entry)
            options.append(Selection(f"{label}  {task}".rstrip(), label, entry in chosen))
        return options

    def _technique_options(self) -> list[Selection[str]]:
        options = []
        for name, technique in techniques().items():
            reason = technique.unavailable_reason()
            prompt = f"{name}  ({technique.family}, {'/'.join(technique.devices)})"
            if reason:
                prompt += f": unavailable, {reason}"
            options.append(Selection(prompt, name, name in self.technique_params,
                                     disabled=bool(reason)))
        return options

    def _show_settings(self) -> None:
        self.query_one("#settings", FieldTable).show_rows(
            (key, label, self.fields[key], "") for key, label, _ in SETTINGS)

    # ------------------------------------------------------------------ form <-> widgets
    def _set_form(self, form: FormValues) -> None:
        known = set(techniques())
        self.technique_params = {n: dict(p) for n, p in form.techniques.items() if n in known}
        self.fields = {key: getattr(form, key) for key in
                       ("batch_sizes", "sequence_lengths", "resolutions", "device", "name")}
        self.fields.update({key: form.protocol.get(key, "") for key, _, _ in PROTOCOL_FIELDS})
        self.kept = form.kept

    def apply_form(self, form: FormValues) -> None:
        """Show a profile's values in the widgets (models it names are added to the list)."""
        self._set_form(form)
        models = self.query_one("#models", SelectionList)
        models.add_options(self._model_options(form.models, form.models))
        models.deselect_all()
        for entry in form.models:
            models.select(model_label(entry))
        chosen = self.query_one("#techniques", SelectionList)
        chosen.deselect_all()
        for name in self.technique_params:
            chosen.select(name)
        self._show_settings()
        if self.shown_params is not None:
            self._show_params(self.shown_params)
        self.refresh_summary()

    def set_field(self, key: str, text: str) -> None:
        """Change one setting (what editing its row does) and recount the runs."""
        self.fields[key] = text
        self.query_one("#settings", FieldTable).set_text(key, text)
        self.refresh_summary()

    def current_form(self) -> FormValues:
        chosen = self.query_one("#techniques", SelectionList).selected
        models = self.query_one("#models", SelectionList).selected
        return FormValues(
            name=self.fields["name"],
            models=[self.model_entries[k] for k in models],
            techniques={n: dict(self.technique_params.get(n, {})) for n in chosen},
            batch_sizes=self.fields["batch_sizes"],
            sequence_lengths=self.fields["sequence_lengths"],
            resolutions=self.fields["resolutions"],
            device=self.fields["device"],
            protocol={k: self.fields[k] for k, _, _ in PROTOCOL_FIELDS},
            kept=self.kept,
        )

    def refresh_summary(self) -> None:
        summary = self.query_one("#summary", Static)
        self.profile = None
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
    @on(SelectionList.SelectedChanged)
    def _changed(self) -> None:
        self.refresh_summary()

    @on(SelectionList.SelectionHighlighted, "#techniques")
    def _technique_highlighted(self, event: SelectionList.SelectionHighlighted) -> None:
        self._show_params(event.selection.value)

    def _show_params(self, technique: str) -> None:
        """The highlighted technique's parameters, in a table built the first time one has any."""
        self.shown_params = technique
        box = self.query_one("#params", Vertical)
        params = techniques()[technique].params
        box.display = bool(params)
        if not params:
            return
        if not box.children:
            box.mount(Label("", classes="section"), FieldTable(id="param-table"))
        box.query_one(Label).update(f"{technique} parameters (⏎ edits)")
        values = self.technique_params.get(technique, {})
        box.query_one(FieldTable).show_rows(
            (p.name, p.name, str(values[p.name]) if p.name in values else "", str(p.default))
            for p in params)

    @on(DataTable.RowSelected, "#settings")
    def _edit_setting(self, event: DataTable.RowSelected) -> None:
        key = str(event.row_key.value)
        label, hint = next((label, hint) for k, label, hint in SETTINGS if k == key)

        def edited(text: str | None) -> None:
            if text is not None:
                self.set_field(key, text)

        self.app.push_screen(AskScreen(f"{label}:", self.fields[key],
                                       f"{hint}. Enter saves, escape cancels"), edited)

    @on(DataTable.RowSelected, "#param-table")
    def _edit_param(self, event: DataTable.RowSelected) -> None:
        technique = self.shown_params or ""
        param = next(p for p in techniques()[technique].params if p.name == event.row_key.value)
        values = self.technique_params.get(technique, {})
        hint = f"default {param.default}"
        if param.choices:
            hint += f"; one of {', '.join(map(str, param.choices))}"

        def edited(text: str | None) -> None:
            if text is not None:
                self.set_param(technique, param.name, text)

        self.app.push_screen(AskScreen(
            f"{technique} · {param.name}: {param.help}", str(values.get(param.name, "")),
            f"{hint}; blank for the default. Enter saves, escape cancels",
            check=lambda text: _param_problem(param, text)), edited)

    def set_param(self, technique: str, name: str, text: str) -> None:
        """Set (or with a blank text, reset to its default) one parameter of a technique."""
        param = next(p for p in techniques()[technique].params if p.name == name)
        problem = _param_problem(param, text)
        if problem:
            raise ValueError(problem)
        values = self.technique_params.setdefault(technique, {})
        if text:
            values[name] = param.validate(_typed(param.type, text))
        else:
            values.pop(name, None)
        if self.shown_params == technique:
            self.query_one("#param-table", FieldTable).set_text(name, text)
        self.refresh_summary()

    # ------------------------------------------------------------------ actions
    def action_add_model(self) -> None:
        def add(text: str, task: str | None) -> str | None:
            try:
                entry = model_entry(text, task)
            except ProfileError as exc:
                return exc.problem
            models = self.query_one("#models", SelectionList)
            models.add_options(self._model_options([entry], [entry]))
            models.select(model_label(entry))
            self.refresh_summary()
            return None

        self.app.push_screen(AddModelScreen(TASKS, add))

    def action_start(self) -> None:
        self.refresh_summary()
        if self.profile is None:
            self.notify("fix the problem shown above Start first", severity="error")
            return
        session_dir = self.results_root / session_dir_name(self.profile.name)
        profile_path = save_profile(self.profile, session_dir / "profile.yaml")
        pid = start_runner(profile_path, session_dir)
        from energy_console.tui.screens.live import LiveScreen

        self.app.push_screen(LiveScreen(session_dir, runner_pid=pid))

    def action_save_profile(self) -> None:
        def save(name: str | None) -> None:
            if not name:
                return
            self.set_field("name", name)
            if self.profile is None:
                self.notify("not saved: fix the problem shown above Start", severity="error")
                return
            path = save_profile(self.profile, self.profiles_dir / f"{self.profile.name}.yaml")
            self.notify(f"saved {path}")

        self.app.push_screen(AskScreen("Save the profile as profiles/<name>.yaml; name:",
                                       self.fields["name"]), save)

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


def _param_problem(param: Param, text: str) -> str | None:
    """What is wrong with a typed parameter value (blank means the default), or None."""
    if not text:
        return None
    try:
        value = _typed(param.type, text)
    except ValueError:
        return f"{param.name} must be a {param.type.__name__}, got {text!r}"
    try:
        param.validate(value)
    except ValueError as exc:
        return str(exc)
    return None


def _typed(kind: type, text: str) -> Any:
    if kind is bool:
        if text.lower() not in ("true", "false"):
            raise ValueError(text)
        return text.lower() == "true"
    return kind(text)

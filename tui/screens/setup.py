"""What to measure: models, techniques and their parameters, input sizes, protocol, device.

Every change rebuilds the profile through core.profile, so the run count, the duration estimate
and any error message are what `energy-console run` would say about the same profile. Settings and
technique parameters are rows of a table edited one at a time, and the run count and the models of
saved profiles arrive just after the first paint: that keeps the screen quick to open.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from energy_console.core.compression import Param, Technique, parse_technique, techniques
from energy_console.core.measure.devices import list_devices
from energy_console.core.models.base import TASKS
from energy_console.core.models.demo import DEMO_MODELS
from energy_console.core.quality.dataset_check import DATASET_FORMATS
from energy_console.core.session.launch import start_runner
from energy_console.core.session.plan import expand
from energy_console.core.spec.profile import Profile, ProfileError, load_profile, save_profile
from energy_console.core.store.session_dir import session_dir_name
from energy_console.tui import format as fmt
from energy_console.tui.keys import action_links, screen_keys
from energy_console.tui.screens.dialogs import AddModelScreen, AskScreen, ChooseScreen, PickScreen
from energy_console.tui.selection import (
    PROTOCOL_FIELDS,
    FormValues,
    build_profile,
    dataset_problem,
    device_choices,
    estimate_duration_s,
    form_from_profile,
    is_chain,
    known_task,
    model_dataset_path,
    model_entry,
    model_label,
    model_task,
    read_saved_profiles,
    technique_entry,
    technique_from_text,
    technique_text,
    unavailable_reason,
    with_dataset,
)
from energy_console.tui.widgets.field_table import FieldTable
from energy_console.tui.widgets.tick_list import TickList
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
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
        Binding("c", "chain", "Chain", id="chain"),
        Binding("d", "dataset", "Dataset", id="dataset"),
    ]
    HELP = ("space ticks a model or technique\n"
            "d sets or clears the highlighted model's dataset (quality is measured on it)\n"
            "Enter on a setting or a technique parameter edits it; on Device it lists this "
            "machine's devices\n"
            "c adds a chain (techniques applied in order, one run), or edits the highlighted one")

    def __init__(self, profiles_dir: Path, results_root: Path, profile: Profile | None = None,
                 source: Path | None = None, problem: str | None = None):
        """`source`: the file `profile` was read from (the title names it); `problem`: what to
        say first (a default profile that did not load, say)."""
        super().__init__()
        self.profiles_dir, self.results_root = profiles_dir, results_root
        default = FormValues(models=[next(iter(DEMO_MODELS))], techniques=["baseline"])
        self.problem_at_start = problem  # also a profile given that the form cannot show
        # what the form shows: a profile file, a profile's name, or None (a new selection)
        self.loaded: str | None = _shown_path(source) if source else \
            profile.name if profile else None
        try:
            initial = form_from_profile(profile) if profile else default
        except (ProfileError, ValueError, TypeError, KeyError) as exc:
            name = profile.name if profile else "?"
            self.problem_at_start = f"cannot show profile {name}: {exc}"
            self.loaded = None
            initial = default
        self.model_entries: dict[str, Any] = {}  # list key (its label) -> profile model entry
        self.model_order: list[Any] = []  # entries in the order the profile lists them
        self.fields: dict[str, str] = {}  # settings key -> text as typed
        self.technique_params: dict[str, dict[str, Any]] = {}  # catalogue technique -> params
        # entries the catalogue rows cannot hold (chains, a technique listed again with other
        # parameters), kept as loaded: list key -> profile entry
        self.technique_entries: dict[str, Any] = {}
        self.technique_order: list[str] = []  # list keys in the order the profile lists them
        self.shown_params: str | None = None  # the technique whose parameters the table shows
        self.profile: Profile | None = None
        self._set_form(initial)

    # ------------------------------------------------------------------ layout
    def compose(self) -> ComposeResult:
        yield Static(self._title(), id="title", markup=False)
        with Horizontal(id="columns"):
            with VerticalScroll(id="left", can_focus=False):
                yield Label("Models (space ticks · d dataset)", classes="section")
                yield TickList(*self._model_options([*DEMO_MODELS, *self.model_order],
                                                     self.model_order), id="models")
                yield Label("Techniques", classes="section")
                yield TickList(*self._technique_options(), id="techniques")
                yield Vertical(id="params")
            with VerticalScroll(id="right", can_focus=False):
                yield Label("Inputs, protocol, device (⏎ edits)", classes="section")
                yield FieldTable(id="settings")
        yield Static("counting runs…", id="summary", markup=False)
        yield Static(id="actions")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#actions", Static).update(action_links(screen_keys(self).here))
        self._show_settings()
        if self.problem_at_start:
            self.notify(self.problem_at_start, severity="error", timeout=10, markup=False)
        self.call_after_refresh(self._after_first_paint)

    def _title(self) -> str:
        if self.loaded is None:
            return "energy-console · new session: choose what to measure"
        return f"energy-console · new session · profile {self.loaded}"

    def _show_loaded(self, loaded: str | None) -> None:
        self.loaded = loaded
        self.query_one("#title", Static).update(self._title())

    def _after_first_paint(self) -> None:
        """Models named in saved profiles (reads every profile) and the run count."""
        saved = read_saved_profiles(self.profiles_dir)
        models = self.query_one("#models", SelectionList)
        for selection in self._model_options(list(saved.models), []):
            models.add_option(selection)
        if saved.problems:
            names = ", ".join(path.name for path in saved.problems)
            self.notify(f"cannot open {names} from {self.profiles_dir}/: ^o lists why",
                        severity="warning", timeout=10, markup=False)
        self.refresh_summary()

    def _model_key(self, entry: Any) -> str:
        """The list key of a model entry: its label, numbered when another entry has it."""
        for key, known in self.model_entries.items():
            if known == entry:
                return key
        label = key = model_label(entry)
        number = 2
        while key in self.model_entries:
            key, number = f"{label} #{number}", number + 1
        return key

    def _model_options(self, entries: list[Any], chosen: list[Any]) -> list[Selection[str]]:
        """Options for the entries not listed yet; those in `chosen` ticked."""
        options = []
        for entry in entries:
            if entry in self.model_entries.values():
                continue
            key = self._model_key(entry)
            self.model_entries[key] = entry
            options.append(Selection(self._model_prompt(key), key, entry in chosen, id=key))
        return options

    def _model_prompt(self, key: str) -> Content:
        return Content(f"{key}  {known_task(self.model_entries[key])}".rstrip())

    def _technique_options(self) -> list[Selection[str]]:
        device = self.fields["device"]
        options = []
        for name, technique in techniques().items():
            ticked = name in self.technique_order
            reason = unavailable_reason(technique, device)
            options.append(Selection(_technique_prompt(name, technique, reason), name, ticked,
                                     id=name, disabled=bool(reason) and not ticked))
        options += self._entry_options(list(self.technique_entries))
        return options

    def _entry_options(self, keys: list[str]) -> list[Selection[str]]:
        return [Selection(Content(_entry_prompt(self.technique_entries[key])), key,
                          key in self.technique_order, id=key) for key in keys]

    def _show_settings(self) -> None:
        self.query_one("#settings", FieldTable).show_rows(
            (key, label, self.fields[key], "") for key, label, _ in SETTINGS)

    # ------------------------------------------------------------------ form <-> widgets
    def _set_form(self, form: FormValues) -> list[str]:
        """Take in a form's values; returns the keys of technique entries new to the list."""
        self.technique_params = {}
        self.technique_order = []
        new_entries = []
        for entry in form.techniques:
            spec = parse_technique(entry)
            name = spec.steps[0].name
            if not spec.is_chain and name not in self.technique_params:
                self.technique_params[name] = dict(spec.steps[0].params)
                key = name
            else:
                key = _entry_key(entry)
                if key not in self.technique_entries:
                    self.technique_entries[key] = entry
                    new_entries.append(key)
            self.technique_order.append(key)
        self.model_order = list(form.models)
        self.fields = {key: getattr(form, key) for key in
                       ("batch_sizes", "sequence_lengths", "resolutions", "device", "name")}
        self.fields.update({key: form.protocol.get(key, "") for key, _, _ in PROTOCOL_FIELDS})
        self.kept = form.kept
        return new_entries

    def apply_form(self, form: FormValues) -> None:
        """Show a profile's values in the widgets (models and chains it names are added)."""
        new_entries = self._set_form(form)
        models = self.query_one("#models", SelectionList)
        models.add_options(self._model_options(form.models, form.models))
        models.deselect_all()
        for entry in form.models:
            models.select(self._model_key(entry))
        chosen = self.query_one("#techniques", SelectionList)
        chosen.add_options(self._entry_options(new_entries))
        chosen.deselect_all()
        self._show_availability()
        for key in self.technique_order:
            chosen.select(key)
        self._show_settings()
        if self.shown_params is not None:
            self._show_params(self.shown_params)
        self.refresh_summary()

    def set_field(self, key: str, text: str) -> None:
        """Change one setting (what editing its row does) and recount the runs."""
        self.fields[key] = text
        self.query_one("#settings", FieldTable).set_text(key, text)
        if key == "device":
            self._show_availability()
        self.refresh_summary()

    def _show_availability(self) -> None:
        """Techniques that cannot run on the chosen device: the reason beside them, and not
        tickable (one already ticked stays tickable, so it can be unticked)."""
        chosen = self.query_one("#techniques", SelectionList)
        ticked = set(chosen.selected) | set(self.technique_order)
        for name, technique in techniques().items():
            reason = unavailable_reason(technique, self.fields["device"])
            chosen.replace_option_prompt(name, _technique_prompt(name, technique, reason))
            if reason and name not in ticked:
                chosen.disable_option(name)
            else:
                chosen.enable_option(name)

    def current_form(self) -> FormValues:
        chosen = self.query_one("#techniques", SelectionList).selected
        models = self.query_one("#models", SelectionList).selected
        model_order = [self._model_key(entry) for entry in self.model_order]
        return FormValues(
            name=self.fields["name"],
            models=[self.model_entries[k] for k in _in_order(models, model_order)],
            techniques=[self._technique_entry(k) for k in _in_order(chosen,
                                                                    self.technique_order)],
            batch_sizes=self.fields["batch_sizes"],
            sequence_lengths=self.fields["sequence_lengths"],
            resolutions=self.fields["resolutions"],
            device=self.fields["device"],
            protocol={k: self.fields[k] for k, _, _ in PROTOCOL_FIELDS},
            kept=self.kept,
        )

    def _technique_entry(self, key: str) -> Any:
        if key in self.technique_entries:
            return self.technique_entries[key]
        return technique_entry(key, self.technique_params.get(key, {}))

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
        summary.update(f"{_count(len(specs), 'run')} · about {fmt.duration(estimate)} "
                       f"(rough estimate) · {_count(len(profile.models), 'model')} × "
                       f"{_count(len(profile.techniques), 'technique')}")

    # ------------------------------------------------------------------ events
    @on(SelectionList.SelectedChanged)
    def _changed(self) -> None:
        self.refresh_summary()

    @on(SelectionList.SelectionHighlighted, "#techniques")
    def _technique_highlighted(self, event: SelectionList.SelectionHighlighted) -> None:
        self._show_params(event.selection.value)

    def _show_params(self, key: str) -> None:
        """The highlighted technique's parameters, in a table built the first time one has any;
        for a chain, its steps in order."""
        self.shown_params = key
        box = self.query_one("#params", Vertical)
        entry = self.technique_entries.get(key)
        params = techniques()[key].params if entry is None else ()
        box.display = bool(params) or entry is not None
        if not box.display:
            return
        if not box.children:
            # a Static wraps where a chain's steps are longer than the column
            box.mount(Static("", id="params-title", classes="section", markup=False),
                      FieldTable(id="param-table"))
        table = box.query_one(FieldTable)
        table.display = bool(params)
        if entry is not None:
            steps = " → ".join(technique_text(step) for step in entry.get("chain", [entry])) \
                if is_chain(entry) else technique_text(entry)
            what = "chain, applied in order" if is_chain(entry) else "as loaded"
            box.query_one("#params-title", Static).update(f"{what}: {steps} (c edits)")
            return
        box.query_one("#params-title", Static).update(f"{key} parameters (⏎ edits)")
        values = self.technique_params.get(key, {})
        table.show_rows(
            (p.name, p.name, str(values[p.name]) if p.name in values else "", str(p.default))
            for p in params)

    @on(DataTable.RowSelected, "#settings")
    def _edit_setting(self, event: DataTable.RowSelected) -> None:
        key = str(event.row_key.value)
        if key == "device":
            self.choose_device()
            return
        self._ask_setting(key)

    def _ask_setting(self, key: str) -> None:
        label, hint = next((label, hint) for k, label, hint in SETTINGS if k == key)

        def edited(text: str | None) -> None:
            if text is not None:
                self.set_field(key, text)

        self.app.push_screen(AskScreen(f"{label}:", self.fields[key],
                                       f"{hint}. Enter saves, escape cancels"), edited)

    def choose_device(self) -> None:
        """Pick one of the devices this machine has (found through NVML, not torch), or type one
        (a profile for another machine)."""
        choices = device_choices(list_devices(), self.fields["device"])
        choices.append((TYPE_DEVICE, "type one (for a profile run on another machine)"))

        def chosen(device: str | None) -> None:
            if device == TYPE_DEVICE:
                self._ask_setting("device")
            elif device is not None:
                self.set_field("device", device)

        self.app.push_screen(ChooseScreen("Device: where the runs execute", choices,
                                          self.fields["device"]), chosen)

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
            models.select(self._model_key(entry))
            self.refresh_summary()
            return None

        self.app.push_screen(AddModelScreen(TASKS, add))

    def action_dataset(self) -> None:
        """Set or clear the dataset of the highlighted model; its format is checked as typed."""
        option = self.query_one("#models", SelectionList).highlighted_option
        if option is None or option.id is None:
            self.notify("highlight a model in the list first", severity="warning")
            return
        key = option.id
        entry = self.model_entries[key]
        task = model_task(entry)
        needs = DATASET_FORMATS.get(task, "its format is checked when the run starts (the task "
                                    "is not known yet)")

        def done(path: str | None) -> None:
            if path is not None:
                self.set_model_dataset(key, path)

        self.app.push_screen(AskScreen(
            f"Dataset of {model_label(with_dataset(entry, ''))}{f' ({task})' if task else ''}: "
            "a file or folder",
            model_dataset_path(entry),
            f"{needs}; relative to {Path.cwd()}. Blank removes it. Enter saves, escape cancels",
            check=lambda text: dataset_problem(text, task, entry)), done)

    def set_model_dataset(self, key: str, path: str) -> None:
        """Give the model listed as `key` a dataset (blank: none). Its row is relabelled in
        place; where the model without a dataset is listed already, that row stands for it."""
        old = self.model_entries[key]
        problem = dataset_problem(path, model_task(old), old)
        if problem:
            raise ValueError(problem)
        entry = with_dataset(old, path)
        if entry == old:
            return
        models = self.query_one("#models", SelectionList)
        ticked = set(models.selected)
        del self.model_entries[key]
        same = next((k for k, known in self.model_entries.items() if known == entry), None)
        new_key = same or self._model_key(entry)
        self.model_entries[new_key] = entry
        order: list[Any] = []
        for known in (entry if e == old else e for e in self.model_order):
            if known not in order:
                order.append(known)
        self.model_order = order
        if key in ticked:
            ticked = (ticked - {key}) | {new_key}
        keys = [str(o.id) for o in models.options]  # each model option's id is its key
        keys = [new_key if k == key else k for k in keys if not (k == key and same)]
        models.clear_options()
        models.add_options(Selection(self._model_prompt(k), k, k in ticked, id=k)
                           for k in keys)
        models.highlighted = keys.index(new_key)
        self.refresh_summary()

    def action_chain(self) -> None:
        """Type a chain (steps joined by +, parameters as name=value): a new one, or the
        highlighted one edited in place (it keeps its place in the profile's order)."""
        chosen = self.query_one("#techniques", SelectionList)
        option = chosen.highlighted_option
        editing = option.id if option is not None and option.id in self.technique_entries \
            else None
        text = technique_text(self.technique_entries[editing]) if editing else ""

        def done(answer: str | None) -> None:
            if answer:
                self.put_technique_entry(technique_from_text(answer), replacing=editing)

        self.app.push_screen(AskScreen(
            "Edit this entry (steps joined by +):" if editing else
            "New chain: techniques applied in order, one run (steps joined by +):", text,
            "e.g. structured-prune ratio=0.3 + dynamic-int8. Enter saves, escape cancels",
            check=_chain_problem), done)

    def put_technique_entry(self, entry: Any, replacing: str | None = None) -> None:
        """List and tick a technique entry (a chain, or a technique with other parameters);
        with `replacing`, it takes that entry's place in the order."""
        key = _entry_key(entry)
        chosen = self.query_one("#techniques", SelectionList)
        if key not in self.technique_entries:
            self.technique_entries[key] = entry
            chosen.add_options(self._entry_options([key]))
        if replacing and replacing != key:
            if replacing in self.technique_order:
                self.technique_order[self.technique_order.index(replacing)] = key
            chosen.remove_option(replacing)
            del self.technique_entries[replacing]
        chosen.select(key)
        self.refresh_summary()

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
            self._show_loaded(_shown_path(path))
            self.notify(f"saved {path}", markup=False)

        self.app.push_screen(AskScreen("Save the profile as profiles/<name>.yaml; name:",
                                       self.fields["name"]), save)

    def action_open_profile(self) -> None:
        def open_(path: Path | None) -> None:
            if path is not None:
                self.open_profile(path)

        saved = read_saved_profiles(self.profiles_dir)
        self.app.push_screen(PickScreen("Open a profile", list(saved.paths),
                                        f"no profiles in {self.profiles_dir}/ yet",
                                        problems=saved.problems), open_)

    def open_profile(self, path: Path) -> None:
        """Show a saved profile; one the form cannot show is reported, never fatal."""
        try:
            form = form_from_profile(load_profile(path))
        except ProfileError as exc:
            self.notify(str(exc), severity="error", timeout=10, markup=False)
            return
        except (ValueError, TypeError, KeyError) as exc:
            self.notify(f"cannot show {path}: {exc}", severity="error", timeout=10, markup=False)
            return
        self.apply_form(form)
        self._show_loaded(_shown_path(path))
        self.notify(f"opened {path}", markup=False)


TYPE_DEVICE = "…"  # the device picker's last choice: type a device instead


def _shown_path(path: Path) -> str:
    """A profile's path as the title shows it: relative to the working folder where it is in it."""
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _count(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _in_order(chosen: list[str], order: list[str]) -> list[str]:
    """The chosen keys, those the profile listed in its order first, then as they were ticked."""
    return [k for k in order if k in chosen] + [k for k in chosen if k not in order]


def _technique_prompt(name: str, technique: Technique, reason: str | None) -> Content:
    if reason:  # the reason first: it names the device types too, and columns are narrow
        return Content(f"{name}  ✗ {reason}")
    return Content(f"{name}  ({technique.family}, {'/'.join(technique.devices)})")


def _entry_key(entry: Any) -> str:
    """A list key for a technique entry the catalogue rows do not hold: its content."""
    return "entry:" + json.dumps(entry, sort_keys=True)


def _entry_prompt(entry: Any) -> str:
    return f"chain: {technique_text(entry)}" if is_chain(entry) else technique_text(entry)


def _chain_problem(text: str) -> str | None:
    if not text:
        return None
    try:
        technique_from_text(text)
    except ProfileError as exc:
        return exc.problem
    return None


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

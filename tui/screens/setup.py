"""What to measure: models, techniques and their parameters, input sizes, protocol, device.

Every change rebuilds the profile through core.profile, so the run count, the duration estimate
and any error message are what `energy-console run` would say about the same profile. The default
profile, the models of saved profiles and the run count arrive just after the first paint, which
keeps the screen quick to open. The widgets hold what they show (tui/widgets); this screen wires
them to the dialogs and the summary line.
"""

from __future__ import annotations

from pathlib import Path

from energy_console.core.compression import techniques
from energy_console.core.models import sources
from energy_console.core.models.demo import DEMO_MODELS
from energy_console.core.spec.profile import Profile, ProfileError
from energy_console.core.spec.tasks import TASKS
from energy_console.core.spec.text import printable
from energy_console.tui import format as fmt
from energy_console.tui.keys import action_links, screen_keys
from energy_console.tui.selection import (
    PROTOCOL_FIELDS,
    FormValues,
    dataset_problem,
    device_choices,
    form_from_profile,
    load_profile,
    model_dataset_path,
    model_entry,
    model_task,
    read_saved_profiles,
    technique_from_text,
    technique_text,
)
from energy_console.tui.setup_choices import (
    ProfileFile,
    chain_problem,
    dataset_dialog_text,
    entry_prompt,
    save_form,
    setup_titles,
    shown_path,
    summary_line,
)
from energy_console.tui.widgets.key_footer import KeyFooter
from energy_console.tui.widgets.model_picker import ModelPicker
from energy_console.tui.widgets.param_panel import ParamPanel
from energy_console.tui.widgets.settings_table import SETTINGS, SettingsTable
from energy_console.tui.widgets.technique_picker import TechniquePicker
from energy_console.tui.widgets.title import Title
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import DataTable, Label, SelectionList, Static

TYPE_DEVICE = "…"  # the device picker's last choice: type a device instead


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
                 source: Path | None = None, opening: Path | None = None):
        """`source`: the file `profile` was read from (the title names it); `opening`: a
        profile file to open just after the first paint (the default profile, say)."""
        super().__init__()
        self.profiles_dir, self.results_root = profiles_dir, results_root
        self.opening = opening
        default = FormValues(models=[next(iter(DEMO_MODELS))], techniques=["baseline"])
        self.problem_at_start: str | None = None  # a profile given that the form cannot show
        # what the form shows: a profile file, a profile's name, or None (a new selection)
        self.loaded: str | None = shown_path(source) if source else \
            profile.name if profile else None
        try:
            self.initial = form_from_profile(profile) if profile else default
        except (ProfileError, ValueError, TypeError, KeyError) as exc:
            name = profile.name if profile else "?"
            self.problem_at_start = f"cannot show profile {name}: {exc}"
            self.loaded = None
            self.initial = default
        self.kept = self.initial.kept  # what the form does not edit (FormValues.kept)
        # the file the form shows, where it came from one: saving rewrites only what changed
        self.opened = ProfileFile.read(source, self.initial) if source and self.loaded else None
        self.profile: Profile | None = None
        self.counted: FormValues | None = None  # the form self.profile was built from
        self.done, self.keep_done = "", False  # what the status line confirms (confirm)

    # ------------------------------------------------------------------ layout
    def compose(self) -> ComposeResult:
        form = self.initial
        yield Title(*self._titles())
        with Horizontal(id="columns"):
            with Vertical(id="left"):
                yield Label("Models (space ticks · d dataset)", classes="section")
                yield ModelPicker(list(DEMO_MODELS), form.models, id="models")
                yield Label("Techniques", classes="section")
                yield TechniquePicker(form.techniques, form.device, id="techniques")
                yield ParamPanel(id="params")
            with VerticalScroll(id="right", can_focus=False):
                yield Label("Inputs, protocol, device (⏎ edits)", classes="section")
                yield SettingsTable(form, id="settings")
        yield Static(fmt.shown("counting runs…"), id="summary")
        yield Static(id="actions")
        yield KeyFooter()

    def on_mount(self) -> None:
        self.query_one("#actions", Static).update(action_links(screen_keys(self).here))
        self.query_one(SettingsTable).show()
        if self.problem_at_start:
            self.notify(printable(self.problem_at_start), severity="error", timeout=10,
                        markup=False)
        self.call_after_refresh(self._after_first_paint)

    def _titles(self) -> tuple[str, ...]:
        return setup_titles(self.loaded, shown_path(self.opening) if self.opening else None)

    def _show_loaded(self, loaded: str | None) -> None:
        self.loaded = loaded
        self.query_one(Title).show(*self._titles())

    def _after_first_paint(self) -> None:
        """The profile to open, models named in saved profiles (reads every profile) and the
        run count."""
        if self.opening is not None:
            opening, self.opening = self.opening, None
            if not self.open_profile(opening, announce=False):
                self._show_loaded(None)
        saved = read_saved_profiles(self.profiles_dir)
        models = self.query_one(ModelPicker)
        for selection in models.new_options(list(saved.models), []):
            models.add_option(selection)
        if saved.problems:
            names = ", ".join(path.name for path in saved.problems)
            self.notify(printable(f"cannot open {names} from {self.profiles_dir}/: ^o lists why"),
                        severity="warning", timeout=10, markup=False)
        self.refresh_summary()

    # ------------------------------------------------------------------ form <-> widgets
    @property
    def settings(self) -> dict[str, str]:
        """Each setting's text as typed, by form key."""
        return self.query_one(SettingsTable).texts

    def apply_form(self, form: FormValues) -> None:
        """Show a profile's values in the widgets (models and chains it names are added)."""
        self.kept = form.kept
        self.query_one(ModelPicker).show(form.models)
        self.query_one(TechniquePicker).show(form.techniques, form.device)
        self.query_one(SettingsTable).show(form)
        panel = self.query_one(ParamPanel)
        if panel.technique is not None:
            self._show_params(panel.technique)
        self.refresh_summary()

    def set_field(self, key: str, text: str) -> None:
        """Change one setting (what editing its row does) and recount the runs."""
        self.query_one(SettingsTable).set(key, text)
        if key == "device":
            self.query_one(TechniquePicker).show_availability(text)
        self.refresh_summary()

    def current_form(self) -> FormValues:
        texts = self.settings
        return FormValues(
            name=texts["name"],
            models=self.query_one(ModelPicker).chosen_entries(),
            techniques=self.query_one(TechniquePicker).chosen_entries(),
            batch_sizes=texts["batch_sizes"],
            sequence_lengths=texts["sequence_lengths"],
            resolutions=texts["resolutions"],
            device=texts["device"],
            protocol={k: texts[k] for k, _, _ in PROTOCOL_FIELDS},
            kept=self.kept,
        )

    def confirm(self, done: str) -> None:
        """Say what was just done before the run count, until the next tick but adding's own."""
        self.done, self.keep_done = done, True
        self.refresh_summary()

    def refresh_summary(self, recount: bool = True) -> None:
        """The run count line; `recount=False` builds the profile only if the form changed."""
        form = self.current_form()
        if recount or form != self.counted:
            self.counted = form
            self.profile, self.summary = summary_line(form)
        first = f"✓ {self.done} · " if self.done else ""
        self.query_one("#summary", Static).update(fmt.shown(first + self.summary))

    # ------------------------------------------------------------------ events
    @on(SelectionList.SelectedChanged)
    def _changed(self) -> None:
        if not self.keep_done:
            self.done = ""
        self.keep_done = False
        # a profile shown ticks each of its models: it was counted once, when shown
        self.refresh_summary(recount=False)

    @on(SelectionList.SelectionHighlighted, "#techniques")
    def _technique_highlighted(self, event: SelectionList.SelectionHighlighted) -> None:
        self._show_params(event.selection.value)

    def _show_params(self, key: str) -> None:
        chosen = self.query_one(TechniquePicker)
        entry = chosen.entries.get(key)
        params = techniques()[key].params if entry is None else ()
        self.query_one(ParamPanel).show(key, entry, params, chosen.params.get(key, {}))

    @on(DataTable.RowSelected, "#settings")
    def _edit_setting(self, event: DataTable.RowSelected) -> None:
        key = str(event.row_key.value)
        if key == "device":
            self.choose_device()
            return
        self._ask_setting(key)

    def _ask_setting(self, key: str) -> None:
        from energy_console.tui.screens.dialogs import AskScreen  # the dialogs: not at start-up
        label, hint = next((label, hint) for k, label, hint in SETTINGS if k == key)

        def edited(text: str | None) -> None:
            if text is not None:
                self.set_field(key, text)

        self.app.push_screen(AskScreen(f"{label}:", self.settings[key],
                                       f"{hint}. Enter saves, escape cancels"), edited)

    def choose_device(self) -> None:
        """Pick one of the devices this machine has (found through NVML, not torch), or type one
        (a profile for another machine)."""
        from energy_console.core.measure.devices import list_devices
        from energy_console.tui.screens.dialogs import ChooseScreen
        current = self.settings["device"]
        choices = device_choices(list_devices(), current)
        choices.append((TYPE_DEVICE, "type one (for a profile run on another machine)"))

        def chosen(device: str | None) -> None:
            if device == TYPE_DEVICE:
                self._ask_setting("device")
            elif device is not None:
                self.set_field("device", device)

        self.app.push_screen(ChooseScreen("Device: where the runs execute", choices, current),
                             chosen)

    @on(ParamPanel.Changed)
    def _param_changed(self, event: ParamPanel.Changed) -> None:
        self.query_one(TechniquePicker).set_param(event.technique, event.param, event.value)
        self.refresh_summary()

    # ------------------------------------------------------------------ actions
    def action_add_model(self) -> None:
        from energy_console.tui.screens.dialogs import AddModelScreen
        def add(text: str, task: str | None, source: str | None) -> str | None:
            try:
                entry = model_entry(text, task, source)
            except ProfileError as exc:
                return exc.problem
            models = self.query_one(ModelPicker)
            key = models.add(entry)
            models.focus()
            self.confirm(f"added {key}")
            return None

        self.app.push_screen(AddModelScreen(TASKS, sources(), add))

    def action_dataset(self) -> None:
        """Set or clear the dataset of the highlighted model; its format is checked as typed."""
        from energy_console.tui.screens.dialogs import AskScreen
        models = self.query_one(ModelPicker)
        option = models.highlighted_option
        if option is None or option.id is None:
            self.notify("highlight a model in the list first", severity="warning")
            return
        key = option.id
        entry = models.entries[key]
        task = model_task(entry)

        def done(path: str | None) -> None:
            if path is not None:
                self.set_model_dataset(key, path)

        prompt, hint = dataset_dialog_text(entry, task)
        self.app.push_screen(AskScreen(prompt, model_dataset_path(entry), hint,
                                       check=lambda text: dataset_problem(text, task, entry)),
                             done)

    def set_model_dataset(self, key: str, path: str) -> None:
        """Give the model listed as `key` a dataset (blank: none), checked as pre-flight checks
        it; ValueError says what is wrong."""
        models = self.query_one(ModelPicker)
        old = models.entries[key]
        problem = dataset_problem(path, model_task(old), old)
        if problem:
            raise ValueError(problem)
        models.set_dataset(key, path)
        self.refresh_summary()

    def action_chain(self) -> None:
        """Type a chain (steps joined by +, parameters as name=value): a new one, or the
        highlighted one edited in place (it keeps its place in the profile's order)."""
        from energy_console.tui.screens.dialogs import AskScreen
        chosen = self.query_one(TechniquePicker)
        option = chosen.highlighted_option
        editing = option.id if option is not None and option.id in chosen.entries else None
        text = technique_text(chosen.entries[editing]) if editing else ""

        def done(answer: str | None) -> None:
            if answer:  # an edited entry keeps its place in the order
                entry = technique_from_text(answer)
                chosen.put(entry, replacing=editing)
                chosen.focus()
                self.confirm(f"{'changed' if editing else 'added'} {entry_prompt(entry)}")

        self.app.push_screen(AskScreen(
            "Edit this entry (steps joined by +):" if editing else
            "New chain: techniques applied in order, one run (steps joined by +):", text,
            "e.g. structured-prune ratio=0.3 + dynamic-int8. Enter saves, escape cancels",
            check=chain_problem), done)

    def action_start(self) -> None:
        self.refresh_summary()
        if self.profile is None:
            self.notify("fix the problem shown above Start first", severity="error")
            return
        from energy_console.core.session.launch import start_runner
        from energy_console.core.session.profile_check import save_profile
        from energy_console.core.store.session_dir import session_dir_name
        session_dir = self.results_root / session_dir_name(self.profile.name)
        profile_path = save_profile(self.profile, session_dir / "profile.yaml")
        pid = start_runner(profile_path, session_dir)
        from energy_console.tui.screens.live import LiveScreen

        self.app.push_screen(LiveScreen(session_dir, runner_pid=pid))

    def action_save_profile(self) -> None:
        from energy_console.tui.screens.dialogs import AskScreen
        def save(name: str | None) -> None:
            if not name:
                return
            self.set_field("name", name)
            if self.profile is None:
                self.notify("not saved: fix the problem shown above Start", severity="error")
                return
            path = self.profiles_dir / f"{self.profile.name}.yaml"
            self.opened = save_form(self.current_form(), path, self.opened)
            self._show_loaded(shown_path(path))
            self.notify(printable(f"saved {path}"), markup=False)

        self.app.push_screen(AskScreen("Save the profile as profiles/<name>.yaml; name:",
                                       self.settings["name"]), save)

    def action_open_profile(self) -> None:
        from energy_console.tui.screens.dialogs import PickScreen
        def open_(path: Path | None) -> None:
            if path is not None:
                self.open_profile(path)

        saved = read_saved_profiles(self.profiles_dir)
        self.app.push_screen(PickScreen("Open a profile", list(saved.paths),
                                        f"no profiles in {self.profiles_dir}/ yet",
                                        problems=saved.problems), open_)

    def open_profile(self, path: Path, announce: bool = True) -> bool:
        """Show a saved profile (`announce`: and say so); one that does not load or that the
        form cannot show is reported, never fatal. Whether it is shown."""
        try:
            form = form_from_profile(load_profile(path))
        except ProfileError as exc:
            self.notify(printable(f"not opened: {exc}"), severity="error", timeout=10,
                        markup=False)
            return False
        except (OSError, UnicodeDecodeError, ValueError, TypeError, KeyError) as exc:
            self.notify(printable(f"cannot show {path}: {exc}"), severity="error", timeout=10,
                        markup=False)
            return False
        self.apply_form(form)
        self.opened = ProfileFile.read(path, form)
        self._show_loaded(shown_path(path))
        if announce:
            self.notify(printable(f"opened {path}"), markup=False)
        return True

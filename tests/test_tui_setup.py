"""The setup screen: selection to profile, run count, saving and opening profiles, and a real
session started from it and followed, cancelled and stopped through the live view."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest
from energy_console.core.models.demo import DEMO_MODELS
from energy_console.core.session.profile_check import load_profile
from energy_console.core.store.session_dir import read_events, read_runs
from energy_console.tui.app import EnergyConsoleApp
from energy_console.tui.main import main as console_main
from energy_console.tui.screens.live import LiveScreen
from energy_console.tui.screens.setup import SetupScreen
from energy_console.tui.widgets.runs_table import RunsTable
from textual.widgets import DataTable, Input, Label, OptionList, SelectionList, Sparkline, Static

from tests.fakes import pynvml as fake_nvml
from tests.fakes.pynvml import FakeGpu
from tests.session_helpers import write_plain_torch_profile

pytestmark = pytest.mark.session  # slow tier: real runner sessions, CLI processes, end-to-end UI

FAST = {"idle_seconds": "0.5", "warmup": "1", "min_window_s": "0.2", "repeats": "2"}


async def _until(pilot, condition, what: str, timeout_s: float = 10.0) -> None:
    """Let the app run until `condition()` holds; fail naming `what` after `timeout_s`."""
    for _ in range(int(timeout_s / 0.05)):
        if condition():
            return
        await pilot.pause(0.05)
    assert condition(), f"{what}: not after {timeout_s} s"


async def _choose(pilot, techniques: list[str], sequence_lengths: str = "16",
                  protocol: dict[str, str] = FAST) -> SetupScreen:
    screen = pilot.app.screen
    assert isinstance(screen, SetupScreen)
    chosen = screen.query_one("#techniques", SelectionList)
    for name in techniques:
        chosen.select(name)
    screen.set_field("sequence_lengths", sequence_lengths)
    screen.set_field("device", "cpu")  # not "auto": the same runs on a machine with CUDA
    for key, value in protocol.items():
        screen.set_field(key, value)
    await pilot.pause()
    return screen


def _summary(screen) -> str:
    return str(screen.query_one("#summary", Static).render())


async def test_selection_shows_run_count_and_names_bad_input(tmp_path):
    app = EnergyConsoleApp(results_root=tmp_path / "results", profiles_dir=tmp_path / "profiles")
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await _choose(pilot, ["baseline", "dynamic-int8"], sequence_lengths="16, 32")
        assert _summary(screen).startswith("4 runs")
        screen.set_field("batch_sizes", "1, eight")
        await pilot.pause()
        assert "batch sizes" in _summary(screen) and "'1, eight'" in _summary(screen)
        assert screen.profile is None


async def test_saved_profile_loads_back_into_the_form(tmp_path):
    profiles = tmp_path / "profiles"
    app = EnergyConsoleApp(results_root=tmp_path / "results", profiles_dir=profiles)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await _choose(pilot, ["dynamic-int8"])
        await pilot.press("ctrl+s")
        await _until(pilot, lambda: app.screen.query("#answer"), "the name prompt")
        name_box = app.screen.query_one("#answer", Input)
        name_box.value = "mine"
        await pilot.press("enter")
        await pilot.pause()
        saved = load_profile(profiles / "mine.yaml")
        assert [t.slug for t in saved.techniques] == ["baseline", "dynamic-int8"]
        assert saved.protocol.repeats == 2 and saved.inputs.sequence_lengths == (16,)

        screen.query_one("#techniques", SelectionList).deselect_all()
        screen.set_field("repeats", "7")
        await pilot.press("ctrl+o")
        await _until(pilot, lambda: app.screen.query(OptionList), "the profile picker")
        assert app.screen.query_one(OptionList).option_count == 1
        await pilot.press("down", "enter")
        await pilot.pause()
        assert app.screen is screen
        assert screen.query_one("#techniques", SelectionList).selected == [
            "baseline", "dynamic-int8"]
        assert screen.settings["repeats"] == "2"
        assert str(screen.query_one("#settings", DataTable).get_cell("repeats", "value")) == "2"
        assert screen.profile.to_dict() == saved.to_dict()


async def test_the_default_profile_opens_with_its_datasets_and_saves_back_whole(tmp_path):
    """Models with datasets, carbon and protocol keys the form does not show all survive."""
    root = Path(__file__).resolve().parent.parent
    source = root / "profiles" / "default.yaml"
    profiles = tmp_path / "profiles"
    app = EnergyConsoleApp(load_profile(source), results_root=tmp_path / "results",
                           profiles_dir=profiles)
    async with app.run_test(size=(100, 32)) as pilot:
        screen = app.screen
        # the run count appears after the first paint
        await _until(pilot, lambda: "15 runs" in _summary(screen), "the run count")
        ticked = screen.query_one("#models", SelectionList).selected
        assert len(ticked) == 5 and all("· data:" in label for label in ticked)
        await pilot.press("ctrl+s")
        await _until(pilot, lambda: app.screen.query("#answer"), "the name prompt")
        app.screen.query_one("#answer", Input).value = "copy"
        await pilot.press("enter")
        await pilot.pause()
    original, saved = load_profile(source), load_profile(profiles / "copy.yaml")
    assert saved.carbon == original.carbon and saved.protocol == original.protocol
    for before, after in zip(original.models, saved.models, strict=True):
        assert Path(after.dataset["path"]) == (root / "data" / Path(before.dataset["path"]).name)
        assert Path(after.dataset["path"]).exists()


async def test_settings_parameters_and_models_are_edited_with_the_keyboard(tmp_path):
    app = EnergyConsoleApp(results_root=tmp_path / "results", profiles_dir=tmp_path / "profiles")
    async with app.run_test(size=(80, 24)) as pilot:
        screen = app.screen
        await pilot.pause()
        settings = screen.query_one("#settings", DataTable)
        settings.focus()
        settings.move_cursor(row=settings.get_row_index("repeats"))
        await pilot.press("enter", "ctrl+u", *"4", "enter")
        await pilot.pause()
        assert app.screen is screen and screen.profile.protocol.repeats == 4

        techniques = screen.query_one("#techniques", SelectionList)
        techniques.focus()
        techniques.highlighted = next(i for i in range(techniques.option_count) if
                                      techniques.get_option_at_index(i).value == "magnitude-prune")
        techniques.select("magnitude-prune")
        await pilot.pause()
        params = screen.query_one("#param-table", DataTable)
        params.focus()
        params.move_cursor(row=params.get_row_index("amount"))
        await pilot.press("enter", "ctrl+u", *"lots", "enter")
        await pilot.pause()
        assert "amount must be a float" in str(app.screen.query_one("#problem", Label).render())
        await pilot.press("ctrl+u", *"0.25", "enter")
        await pilot.pause()
        assert app.screen is screen
        assert screen.profile.to_dict()["techniques"][-1] == {"magnitude-prune": {"amount": 0.25}}

        await pilot.press("a", *"./no-such-folder", "enter")
        await pilot.pause()
        assert "no folder at ./no-such-folder" in str(
            app.screen.query_one("#problem", Label).render())
        await pilot.press("ctrl+u", *"org/some-model", "enter")
        await pilot.pause()
        assert app.screen is screen
        assert screen.profile is not None, _summary(screen)
        assert {"hf": "org/some-model"} in screen.profile.to_dict()["models"]


# Windows of ten minutes: no run ends by itself while the test acts on it, so cancel and stop
# always meet the run they are aimed at, however fast or slow this machine is.
ENDLESS = {**FAST, "min_window_s": "600"}


def _in_window(live: LiveScreen, index: int) -> bool:
    """The run at `index` is in a timed window (its worker is up and measuring)."""
    run = live.snapshot.current if live.snapshot else None
    return run is not None and run.index == index and run.phase.startswith("repeat")


@pytest.mark.session
async def test_a_real_session_started_from_setup_is_followed_cancelled_and_stopped(tmp_path):
    """Of a plain torch model (`factory:`, its module beside the profile opened: the session runs
    in a folder of its own, and finds it all the same); its runner's forkserver has no
    transformers to import."""
    results = tmp_path / "results"
    profile = write_plain_torch_profile(tmp_path, techniques="[baseline]")
    app = EnergyConsoleApp(load_profile(profile), results_root=results,
                           profiles_dir=tmp_path / "profiles", profile_path=profile)
    async with app.run_test(size=(120, 40)) as pilot:
        await _choose(pilot, ["baseline", "dynamic-int8", "bf16"], protocol=ENDLESS)
        await pilot.press("ctrl+r")
        await _until(pilot, lambda: isinstance(app.screen, LiveScreen), "the live view")
        live = app.screen
        table = live.query_one(RunsTable)

        await _until(pilot, lambda: _in_window(live, 0), "the first run's window", 120)
        await _until(pilot, lambda: any(s.data for s in live.query(Sparkline)), "power")
        await pilot.press("c")
        await _until(pilot, lambda: _in_window(live, 1), "the second run's window", 120)
        baseline = "PlainCNN__baseline__b1-r32"
        assert str(table.get_cell(baseline, "status")) == "skipped"  # the table follows the session
        await pilot.press("x")
        await _until(pilot, lambda: not live.snapshot.is_running, "the session's end", 60)
        assert live.snapshot.status == "stopped"
        assert table.row_count == 3

    session = live.session_dir
    assert session.parent == results
    records = {r.technique: r for r in read_runs(session)}
    assert records.keys() == {"baseline", "dynamic-int8", "bf16"}
    assert (records["baseline"].status, records["baseline"].reason) == (
        "skipped", "cancelled by the user")
    assert (records["dynamic-int8"].status, records["dynamic-int8"].reason) == (
        "skipped", "session stopped during this run")
    assert (records["bf16"].status, records["bf16"].reason) == (
        "skipped", "session stopped before this run")
    assert any(e.KIND == "session_finished" for e in read_events(session))
    assert Path(session / "profile.yaml").exists()


async def test_one_run_reads_in_the_singular(tmp_path):
    app = EnergyConsoleApp(results_root=tmp_path / "results", profiles_dir=tmp_path / "profiles")
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await _choose(pilot, [])
        assert _summary(screen).startswith("1 run · ")
        assert "1 model × 1 technique" in _summary(screen)
        await _choose(pilot, ["bf16"])
        assert _summary(screen).startswith("2 runs · ")
        assert "1 model × 2 techniques" in _summary(screen)


async def test_techniques_the_chosen_device_cannot_run_are_shown_disabled_with_why(tmp_path):
    app = EnergyConsoleApp(results_root=tmp_path / "results", profiles_dir=tmp_path / "profiles")
    async with app.run_test(size=(120, 40)) as pilot:
        screen = app.screen
        techniques = screen.query_one("#techniques", SelectionList)
        screen.set_field("device", "cpu")
        await pilot.pause()
        sparse = techniques.get_option("sparse-2:4")
        assert sparse.disabled and "✗ runs on cuda only" in str(sparse.prompt)
        assert not techniques.get_option("static-int8").disabled

        screen.set_field("device", "cuda:0")
        await pilot.pause()
        assert not techniques.get_option("sparse-2:4").disabled
        static = techniques.get_option("static-int8")
        assert static.disabled and "✗ runs on cpu only" in str(static.prompt)

        # one ticked already keeps its tick and stays tickable, so that it can be unticked
        techniques.select("sparse-2:4")
        screen.set_field("device", "cpu")
        await pilot.pause()
        sparse = techniques.get_option("sparse-2:4")
        assert "sparse-2:4" in techniques.selected and not sparse.disabled
        assert "✗ runs on cuda only" in str(sparse.prompt)
        techniques.focus()
        techniques.highlighted = techniques.get_option_index("sparse-2:4")
        await pilot.press("space")
        await pilot.pause()
        assert "sparse-2:4" not in techniques.selected


# ---------------------------------------------------------------- datasets, devices, default

DATA = Path(__file__).resolve().parent.parent / "data"


async def _ask_dataset(pilot, row: str):
    """Highlight the model row `row` and open its dataset dialog; returns the dialog's input."""
    screen = pilot.app.screen
    models = screen.query_one("#models", SelectionList)
    models.focus()
    models.highlighted = models.get_option_index(row)
    await pilot.press("d")
    await _until(pilot, lambda: pilot.app.screen.query("#answer"), "the dataset dialog")
    return pilot.app.screen.query_one("#answer", Input)


async def _answer(pilot, text: str) -> str:
    """Submit `text` in the open dialog; returns the problem it shows ("" once it closes)."""
    dialog = pilot.app.screen
    dialog.query_one("#answer", Input).value = text
    await pilot.press("enter")
    await _until(pilot, lambda: pilot.app.screen is not dialog or str(
        dialog.query_one("#problem", Label).render()), "an answer to the dialog")
    return "" if pilot.app.screen is not dialog else str(
        dialog.query_one("#problem", Label).render())


async def test_a_model_dataset_is_set_from_its_row_checked_as_typed_and_cleared(tmp_path):
    headless = tmp_path / "no-label.csv"
    headless.write_text("text\nhello\n", encoding="utf-8")
    app = EnergyConsoleApp(results_root=tmp_path / "results", profiles_dir=tmp_path / "profiles")
    async with app.run_test(size=(80, 24)) as pilot:
        screen = app.screen
        await _until(pilot, lambda: screen.profile is not None, "the first count")
        answer = await _ask_dataset(pilot, "demo/tiny-bert-random")
        assert answer.value == ""
        assert "a CSV with text,label columns" in str(app.screen.query(Label).last().render())

        problem = await _answer(pilot, str(tmp_path / "nothing.csv"))
        assert "does not exist" in problem and "fix" in problem
        problem = await _answer(pilot, str(DATA / "text-mini.txt"))
        assert "text-classification needs a CSV with text,label columns" in problem
        problem = await _answer(pilot, str(headless))
        assert "missing: label" in problem and "add a header row" in problem
        assert await _answer(pilot, str(DATA / "sentiment-mini.csv")) == ""

        models = screen.query_one("#models", SelectionList)
        row = "demo/tiny-bert-random · data: sentiment-mini.csv"
        assert row in models.selected and models.highlighted == models.get_option_index(row)
        (model,) = screen.profile.models
        assert model.dataset == {"path": str(DATA / "sentiment-mini.csv")}

        answer = await _ask_dataset(pilot, row)
        assert answer.value == str(DATA / "sentiment-mini.csv")
        assert await _answer(pilot, "") == ""
        assert models.selected == ["demo/tiny-bert-random"]
        assert screen.profile.to_dict()["models"] == ["demo/tiny-bert-random"]
        assert models.option_count == len(DEMO_MODELS)  # the demo models, once each


async def test_an_image_dataset_path_keeps_its_label_map(tmp_path):
    root = Path(__file__).resolve().parent.parent
    app = EnergyConsoleApp(load_profile(root / "profiles" / "default.yaml"),
                           results_root=tmp_path / "results", profiles_dir=tmp_path / "p")
    images = tmp_path / "images"
    (images / "cat").mkdir(parents=True)
    shutil.copy(DATA / "images-mini" / "ring" / "ring-0.ppm", images / "cat" / "a.ppm")
    async with app.run_test(size=(120, 40)) as pilot:
        screen = app.screen
        await _until(pilot, lambda: screen.profile is not None, "the profile")
        await _ask_dataset(pilot, "demo/tiny-resnet-random · data: images-mini")
        assert "holds no images" in await _answer(pilot, str(tmp_path))
        assert await _answer(pilot, str(images)) == ""
        resnet = screen.profile.models[2]
        assert resnet.dataset == {"path": str(images), "label_map": str(
            DATA / "images-mini" / "label_map.json")}


async def test_the_device_picker_lists_this_machines_gpus_and_rechecks_techniques(
        tmp_path, monkeypatch):
    fake_nvml.configure(gpus=[FakeGpu(), FakeGpu(name="NVIDIA L4", memory_total_mib=24 * 1024)])
    monkeypatch.setitem(sys.modules, "pynvml", fake_nvml)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    app = EnergyConsoleApp(results_root=tmp_path / "results", profiles_dir=tmp_path / "profiles")
    async with app.run_test(size=(80, 24)) as pilot:
        screen = app.screen
        settings = screen.query_one("#settings", DataTable)
        settings.focus()
        settings.move_cursor(row=settings.get_row_index("device"))
        await pilot.press("enter")
        await _until(pilot, lambda: app.screen.query("#choices"), "the device picker")
        choices = app.screen.query_one("#choices", OptionList)
        assert [o.id for o in choices.options] == ["auto", "cpu", "cuda:0", "cuda:1", "…"]
        assert "NVIDIA L4, 24 GiB" in str(choices.get_option("cuda:1").prompt)
        assert choices.highlighted == 0  # the current one: auto
        await pilot.press("down", "down", "down", "enter")
        await _until(pilot, lambda: app.screen is screen, "the picker to close")
        assert screen.settings["device"] == "cuda:1" and screen.profile.device == "cuda:1"
        techniques = screen.query_one("#techniques", SelectionList)
        assert not techniques.get_option("sparse-2:4").disabled
        assert techniques.get_option("static-int8").disabled

        # a device typed for another machine
        await pilot.press("enter")
        await _until(pilot, lambda: app.screen.query("#choices"), "the device picker")
        await pilot.press("end", "enter")
        await _until(pilot, lambda: app.screen.query("#answer"), "the device prompt")
        assert await _answer(pilot, "cuda:7") == ""
        assert screen.profile.device == "cuda:7"
        await pilot.press("enter")
        await _until(pilot, lambda: app.screen.query("#choices"), "the device picker")
        choices = app.screen.query_one("#choices", OptionList)
        assert "not found on this machine" in str(choices.get_option("cuda:7").prompt)
        assert choices.highlighted == choices.get_option_index("cuda:7")


async def test_without_a_gpu_the_device_picker_offers_auto_and_cpu(tmp_path):
    app = EnergyConsoleApp(results_root=tmp_path / "results", profiles_dir=tmp_path / "profiles")
    async with app.run_test(size=(80, 24)) as pilot:
        screen = app.screen
        screen.choose_device()
        await _until(pilot, lambda: app.screen.query("#choices"), "the device picker")
        choices = app.screen.query_one("#choices", OptionList)
        assert [o.id for o in choices.options] == ["auto", "cpu", "…"]
        await pilot.press("down", "enter")
        await _until(pilot, lambda: app.screen is screen, "the picker to close")
        assert screen.profile.device == "cpu"
        assert screen.query_one("#techniques", SelectionList).get_option("sparse-2:4").disabled


def _bare_launch(monkeypatch, folder: Path) -> EnergyConsoleApp:
    """The app `energy-console` with no argument builds in `folder` (not run)."""
    built: list[EnergyConsoleApp] = []
    monkeypatch.chdir(folder)
    monkeypatch.setattr(EnergyConsoleApp, "run", lambda self, *a, **k: built.append(self))
    assert console_main([]) == 0
    (app,) = built
    return app


def _title(screen) -> str:
    return str(screen.query_one("#title", Static).render())


async def test_the_console_alone_opens_the_default_profile_and_says_so(tmp_path, monkeypatch):
    root = Path(__file__).resolve().parent.parent
    (tmp_path / "profiles").mkdir()
    shutil.copy(root / "profiles" / "default.yaml", tmp_path / "profiles" / "default.yaml")
    app = _bare_launch(monkeypatch, tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = app.screen
        await _until(pilot, lambda: "15 runs" in _summary(screen), "the default's run count")
        assert "profile profiles/default.yaml" in _title(screen)
        assert screen.profile.name == "default"
        assert len(screen.query_one("#models", SelectionList).selected) == 5


async def test_the_console_alone_without_a_default_profile_opens_a_new_selection(
        tmp_path, monkeypatch):
    app = _bare_launch(monkeypatch, tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = app.screen
        await _until(pilot, lambda: screen.profile is not None, "the first count")
        assert _title(screen).endswith("choose what to measure")
        assert screen.query_one("#models", SelectionList).selected == ["demo/tiny-bert-random"]


async def test_a_broken_default_profile_is_reported_and_the_console_opens(tmp_path, monkeypatch):
    (tmp_path / "profiles").mkdir()
    (tmp_path / "profiles" / "default.yaml").write_text("name: default\nprotocol:\n  repeats: 0\n")
    app = _bare_launch(monkeypatch, tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = app.screen
        await _until(pilot, lambda: any("default.yaml" in n.message
                                        for n in app._notifications), "the problem")
        assert _title(screen).endswith("choose what to measure")
        assert screen.profile is not None and screen.profile.name == "console"


async def test_opening_and_saving_a_profile_name_it_in_the_title(tmp_path):
    profiles = tmp_path / "profiles"
    app = EnergyConsoleApp(results_root=tmp_path / "results", profiles_dir=profiles)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = app.screen
        await pilot.press("ctrl+s")
        await _until(pilot, lambda: app.screen.query("#answer"), "the name prompt")
        assert await _answer(pilot, "mine") == ""
        await _until(pilot, lambda: "mine.yaml" in _title(screen), "the saved profile's name")


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
async def test_the_setup_screen_and_its_dialogs_fit_the_terminal(tmp_path, monkeypatch, size):
    root = Path(__file__).resolve().parent.parent
    app = EnergyConsoleApp(load_profile(root / "profiles" / "default.yaml"),
                           results_root=tmp_path / "results", profiles_dir=tmp_path / "p",
                           profile_path=root / "profiles" / "default.yaml")

    def on_screen(*selectors: str, whole: bool = True) -> None:
        """Shown, and inside the screen (`whole`) or partly in view (in a column that scrolls)."""
        region = app.screen.region
        for selector in selectors:
            widget = app.screen.query_one(selector)
            assert widget.display and widget.region.area > 0, f"{selector} not shown at {size}"
            inside = region.contains_region(widget.region) if whole else bool(
                widget.region.intersection(region).area)
            assert inside, f"{selector} outside the screen at {size}"

    async with app.run_test(size=size) as pilot:
        screen = app.screen
        await _until(pilot, lambda: "15 runs" in _summary(screen), "the run count")
        on_screen("#title", "#models", "#settings", "#summary", "#actions")
        on_screen("#techniques", whole=False)  # the left column scrolls at 80×24
        await _ask_dataset(pilot, "demo/tiny-bert-random · data: sentiment-mini.csv")
        on_screen("#answer", "#problem")
        await pilot.press("escape")
        await _until(pilot, lambda: app.screen is screen, "the dialog to close")
        screen.choose_device()
        await _until(pilot, lambda: app.screen.query("#choices"), "the device picker")
        on_screen("#choices")


async def test_the_default_profile_is_read_after_the_first_paint(tmp_path, monkeypatch):
    """The console paints first; the default profile and its checks arrive a moment later."""
    from energy_console.tui.screens import setup

    root = Path(__file__).resolve().parent.parent
    (tmp_path / "profiles").mkdir()
    shutil.copy(root / "profiles" / "default.yaml", tmp_path / "profiles" / "default.yaml")
    reads: list[Path] = []
    real_load = setup.load_profile
    monkeypatch.setattr(setup, "load_profile", lambda path: reads.append(path) or real_load(path))

    class Probe(EnergyConsoleApp):
        read_before_first_paint: bool | None = None

        def on_ready(self) -> None:
            self.read_before_first_paint = bool(reads)

    monkeypatch.chdir(tmp_path)
    app = Probe(results_root=tmp_path / "results", profiles_dir=Path("profiles"),
                open_default=True)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = app.screen
        await _until(pilot, lambda: "15 runs" in _summary(screen), "the default's run count")
        assert app.read_before_first_paint is False
        assert "profile profiles/default.yaml" in _title(screen)

"""Every profile that `energy-console run` accepts opens in the setup screen, can be edited, and
saves back through the UI to the same profile; a profile the console cannot open is listed with
its error, and the console still starts."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest
import yaml
from energy_console.core.session.profile_check import load_profile
from energy_console.core.spec.profile import Profile
from energy_console.tui.app import EnergyConsoleApp
from energy_console.tui.screens.setup import SetupScreen
from textual.widgets import DataTable, Input, Label, OptionList, SelectionList, Static

pytestmark = pytest.mark.session  # slow tier: real runner sessions, CLI processes, end-to-end UI

ROOT = Path(__file__).resolve().parent.parent

# What the shipped ones do not show: a hub model with a string-form dataset, a chain, one
# technique listed twice with different parameters, models and techniques out of catalogue
# order, and a GPU-only technique on device cpu (skipped when run, but accepted).
TRICKY = """\
name: tricky
device: cpu
models:
  - demo/tiny-gpt2-random
  - hf: org/some-model
    task: text-classification
    dataset: ../data/sentiment-mini.csv
  - demo/tiny-bert-random
techniques:
  - {magnitude-prune: {amount: 0.3}}
  - baseline
  - chain: [{structured-prune: {ratio: 0.3}}, dynamic-int8]
  - {magnitude-prune: {amount: 0.6, scope: layer}}
  - sparse-2:4
  - chain: [bf16]
inputs:
  batch_sizes: 2
protocol:
  iterations: 10
  max_spread: 0.3
sensors:
  cpu_tdp_w: 35
"""


def manual_profiles() -> list[str]:
    """The YAML blocks of docs/profiles.md."""
    text = (ROOT / "docs" / "profiles.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```yaml\n(.*?)```", text, flags=re.S)
    assert blocks, "docs/profiles.md has no YAML example"
    return blocks


def documented_profiles() -> list[tuple[str, Path | str]]:
    """(name, file or YAML text): profiles/*.yaml, tests/profiles/*.yaml, the examples of
    docs/profiles.md and TRICKY."""
    files = sorted((ROOT / "profiles").glob("*.yaml")) + sorted(
        (ROOT / "tests" / "profiles").glob("*.yaml"))
    texts = [(f"docs example {i + 1}", block) for i, block in enumerate(manual_profiles())]
    return ([(str(p.relative_to(ROOT)), p) for p in files] + texts + [("tricky", TRICKY)])


def profile_file(source: Path | str, folder: Path) -> Path:
    """A shipped profile where it is; a written one as a file in `folder` (its relative paths
    then start there: loading and the round trip do not need them to exist)."""
    if isinstance(source, Path):
        return source
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "written.yaml"
    path.write_text(source, encoding="utf-8")
    return path


DOCUMENTED = documented_profiles()


def semantic(profile: Profile) -> dict:
    """A profile as what it measures: relative paths resolved against the profile's folder."""
    document = profile.to_dict()
    document["models"] = [_model(m) for m in profile.models]
    return document


def _model(entry) -> dict:
    dataset = dict(entry.dataset or {})
    for key in ("path", "label_map"):
        if isinstance(dataset.get(key), str):
            dataset[key] = str((Path(entry.base_dir) / dataset[key]).resolve())
    return {"source": entry.source, "ref": entry.resolved_ref, "task": entry.task,
            "dataset": dataset, "trust_remote_code": entry.trust_remote_code}


async def wait_for(pilot, condition, what: str, timeout_s: float = 30.0) -> None:
    for _ in range(int(timeout_s / 0.05)):
        if condition():
            return
        await pilot.pause(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def summary(screen) -> str:
    return str(screen.query_one("#summary", Static).render())


async def save_through_the_ui(pilot, folder: Path, name: str) -> Profile:
    await pilot.press("ctrl+s")
    await wait_for(pilot, lambda: pilot.app.screen.query("#answer"), "the save dialog")
    pilot.app.screen.query_one("#answer", Input).value = name
    await pilot.press("enter")
    path = folder / f"{name}.yaml"
    await wait_for(pilot, path.exists, f"{path} to be written")
    return load_profile(path)


async def edit_setting(pilot, key: str, text: str) -> None:
    screen = pilot.app.screen
    settings = screen.query_one("#settings", DataTable)
    settings.focus()
    settings.move_cursor(row=settings.get_row_index(key))
    await pilot.press("enter")
    await wait_for(pilot, lambda: pilot.app.screen.query("#answer"), "the edit dialog")
    await pilot.press("ctrl+u", *text, "enter")
    await wait_for(pilot, lambda: pilot.app.screen is screen, "the edit dialog to close")


def test_every_shipped_and_documented_profile_is_collected(tmp_path):
    names = [name for name, _ in DOCUMENTED]
    assert {"profiles/default.yaml", "tests/profiles/tiny.yaml", "docs example 1"} <= set(names)
    for i, (_, source) in enumerate(DOCUMENTED):
        load_profile(profile_file(source, tmp_path / str(i)))  # each one `run` accepts


@pytest.mark.parametrize("source", [s for _, s in DOCUMENTED], ids=[n for n, _ in DOCUMENTED])
async def test_a_profile_opens_edits_and_saves_back_unchanged(tmp_path, source):
    path = profile_file(source, tmp_path / "written")
    original = load_profile(path)
    saved_dir = tmp_path / "saved"
    app = EnergyConsoleApp(original, results_root=tmp_path / "results", profiles_dir=saved_dir)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = app.screen
        assert isinstance(screen, SetupScreen)
        await wait_for(pilot, lambda: screen.profile is not None, "the profile to check out")

        saved = await save_through_the_ui(pilot, saved_dir, original.name)
        assert semantic(saved) == semantic(original)

        await edit_setting(pilot, "repeats", "9")
        assert screen.profile is not None and screen.profile.protocol.repeats == 9
        edited = await save_through_the_ui(pilot, saved_dir, "edited")
    expected = dataclasses.replace(
        original, name="edited", protocol=dataclasses.replace(original.protocol, repeats=9))
    assert semantic(edited) == semantic(expected)


async def test_profiles_the_console_used_to_stop_on_open_from_the_open_dialog(tmp_path):
    """A chain and a hub model with a string-form dataset, in the profiles folder."""
    profiles = tmp_path / "profiles"
    profiles.mkdir()
    (profiles / "tricky.yaml").write_text(TRICKY, encoding="utf-8")
    app = EnergyConsoleApp(results_root=tmp_path / "results", profiles_dir=profiles)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = app.screen
        models = screen.query_one("#models", SelectionList)
        await wait_for(pilot, lambda: models.option_count > 4, "saved profiles' models")
        assert any("org/some-model" in str(o.value) for o in models.options)
        await pilot.press("ctrl+o")
        await wait_for(pilot, lambda: app.screen.query(OptionList), "the open dialog")
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.screen is screen, "the dialog to close")
        await wait_for(pilot, lambda: screen.profile is not None
                       and screen.profile.name == "tricky", "the opened profile")
        assert semantic(screen.profile) == semantic(load_profile(profiles / "tricky.yaml"))
        chosen = screen.query_one("#techniques", SelectionList)
        prompts = [str(o.prompt) for o in chosen.options if o.value in chosen.selected]
        assert any("chain: structured-prune ratio=0.3 + dynamic-int8" in p for p in prompts)


async def test_a_broken_profile_is_listed_with_its_error_and_the_console_starts(tmp_path):
    profiles = tmp_path / "profiles"
    profiles.mkdir()
    (profiles / "good.yaml").write_text((ROOT / "tests" / "profiles" / "tiny.yaml").read_text())
    (profiles / "bad.yaml").write_text("name: bad\nmodels: [demo/tiny-bert-random]\n"
                                       "protocol:\n  repeats: 0\n")
    (profiles / "garbled.yaml").write_text("name: [unclosed\n")
    app = EnergyConsoleApp(results_root=tmp_path / "results", profiles_dir=profiles)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = app.screen
        assert isinstance(screen, SetupScreen)
        await wait_for(pilot, lambda: any("bad.yaml" in n.message
                                          for n in app._notifications), "a notice")
        await pilot.press("ctrl+o")
        await wait_for(pilot, lambda: app.screen.query(OptionList), "the open dialog")
        options = app.screen.query_one(OptionList).options
        shown = {str(o.prompt).split()[0]: (str(o.prompt), o.disabled) for o in options}
        assert shown["bad.yaml"][1] and shown["garbled.yaml"][1] and not shown["good.yaml"][1]
        assert "line 4: protocol.repeats: 0 is not allowed" in shown["bad.yaml"][0]
        assert "not valid YAML" in shown["garbled.yaml"][0]
        await pilot.press("enter")  # the highlight starts on the one that opens
        await wait_for(pilot, lambda: app.screen is screen, "the dialog to close")
        await wait_for(pilot, lambda: screen.profile is not None
                       and screen.profile.name == "tiny", "good.yaml opened")


async def test_a_chain_is_typed_added_and_edited_in_place(tmp_path):
    app = EnergyConsoleApp(results_root=tmp_path / "results", profiles_dir=tmp_path / "p")
    async with app.run_test(size=(80, 24)) as pilot:
        screen = app.screen
        await wait_for(pilot, lambda: screen.profile is not None, "the first count")
        await pilot.press("c", *"magnitude-prune amount=lots + dynamic-int8", "enter")
        await wait_for(pilot, lambda: "amount must be a float" in str(
            app.screen.query_one("#problem", Label).render()), "the problem")
        await pilot.press("ctrl+u", *"magnitude-prune amount=0.4 + dynamic-int8", "enter")
        await wait_for(pilot, lambda: app.screen is screen, "the dialog to close")
        assert screen.profile.to_dict()["techniques"] == [
            "baseline", {"chain": [{"magnitude-prune": {"amount": 0.4}}, "dynamic-int8"]}]

        techniques = screen.query_one("#techniques", SelectionList)
        techniques.focus()
        techniques.highlighted = techniques.option_count - 1  # the chain, listed last
        await pilot.press("c")
        await wait_for(pilot, lambda: app.screen.query("#answer"), "the edit dialog")
        assert app.screen.query_one("#answer", Input).value == (
            "magnitude-prune amount=0.4 + dynamic-int8")
        await pilot.press("ctrl+u", *"bf16 + dynamic-int8", "enter")
        await wait_for(pilot, lambda: app.screen is screen, "the dialog to close")
        assert screen.profile.to_dict()["techniques"] == [
            "baseline", {"chain": ["bf16", "dynamic-int8"]}]
        assert "2 runs" in summary(screen)


async def set_dataset(pilot, row: str, path: str) -> None:
    """Through the UI: highlight the model row `row`, press d, type `path`, Enter."""
    screen = pilot.app.screen
    models = screen.query_one("#models", SelectionList)
    models.focus()
    models.highlighted = models.get_option_index(row)
    await pilot.press("d")
    await wait_for(pilot, lambda: pilot.app.screen.query("#answer"), "the dataset dialog")
    await pilot.press("ctrl+u", *path, "enter")
    await wait_for(pilot, lambda: pilot.app.screen is screen, "the dataset dialog to close")


async def test_a_dataset_set_in_the_console_is_saved_as_the_profile_format_has_it(tmp_path):
    """Set on a demo model and a hub model, saved, reopened from the file and saved again:
    `dataset: {path: ...}` under a model that had none, and the path alone where the profile
    wrote it so (the file keeps its form)."""
    (tmp_path / "written").mkdir()
    source = tmp_path / "written" / "tricky.yaml"
    source.write_text(TRICKY, encoding="utf-8")
    saved_dir = tmp_path / "saved"
    csv_path = ROOT / "data" / "sentiment-mini.csv"
    text_path = ROOT / "data" / "text-mini.txt"
    app = EnergyConsoleApp(load_profile(source), results_root=tmp_path / "results",
                           profiles_dir=saved_dir, profile_path=source)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = app.screen
        await wait_for(pilot, lambda: screen.profile is not None, "the profile")
        await set_dataset(pilot, "demo/tiny-gpt2-random", str(text_path))
        await set_dataset(pilot, "org/some-model (text-classification) · data: "
                                 "sentiment-mini.csv", str(csv_path))
        saved = await save_through_the_ui(pilot, saved_dir, "with-data")

    document = yaml.safe_load((saved_dir / "with-data.yaml").read_text(encoding="utf-8"))
    assert document["models"] == [
        {"demo": "demo/tiny-gpt2-random", "dataset": {"path": str(text_path)}},
        {"hf": "org/some-model", "task": "text-classification", "dataset": str(csv_path)},
        "demo/tiny-bert-random"]
    assert saved.models[0].dataset == {"path": str(text_path)}
    assert saved.models[1].dataset == {"path": str(csv_path)}

    app = EnergyConsoleApp(saved, results_root=tmp_path / "results", profiles_dir=saved_dir,
                           profile_path=saved_dir / "with-data.yaml")
    async with app.run_test(size=(80, 24)) as pilot:
        screen = app.screen
        await wait_for(pilot, lambda: screen.profile is not None, "the saved profile")
        assert "with-data.yaml" in str(screen.query_one("#title", Static).render())
        assert semantic(screen.profile) == semantic(saved)
        await set_dataset(pilot, "demo/tiny-gpt2-random · data: text-mini.txt", "")
        again = await save_through_the_ui(pilot, saved_dir, "with-data")
    assert again.models[0].dataset is None and again.models[0].ref == "demo/tiny-gpt2-random"
    assert semantic(again).keys() == semantic(saved).keys()
    assert again.models[1:] == saved.models[1:]


def test_a_factory_model_opened_here_keeps_its_module_folder_and_saves_back_unchanged(tmp_path):
    """The console reads a profile from its own working directory and a session runs the copy in
    its own folder: a factory module beside the opened profile travels as an absolute `folder:`,
    left out again when saved beside that module, relative when saved near it."""
    from energy_console.core.models import source_for
    from energy_console.tui.selection import build_profile, form_from_profile
    from energy_console.tui.setup_choices import ProfileFile, saved_text

    from tests.session_helpers import write_plain_torch_profile

    path = write_plain_torch_profile(tmp_path)
    form = form_from_profile(load_profile(path))
    assert form.models[0]["folder"] == str(tmp_path.resolve())
    built = build_profile(form)  # base_dir: this process's working directory, not tmp_path
    assert built.models[0].base_dir != str(tmp_path.resolve())
    assert source_for("factory").preflight(built.models[0]) is None

    assert saved_text(form, path, ProfileFile.read(path, form)) == path.read_text()
    copy = yaml.safe_load(saved_text(form, tmp_path / "copies" / "c.yaml", None))
    assert copy["models"][0]["folder"] == ".."

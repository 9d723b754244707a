"""A saved profile stays the user's file: unedited it is the same bytes; after an edit only the
edited key's line changes, comments, key order and relative paths kept."""

from __future__ import annotations

import difflib
import shutil
from pathlib import Path

import pytest
import yaml
from energy_console.core.session.profile_check import load_profile
from energy_console.core.spec.profile_write import edited_profile_text, profile_text
from energy_console.tui.app import EnergyConsoleApp
from energy_console.tui.selection import form_from_profile, with_dataset
from energy_console.tui.setup_choices import ProfileFile, saved_text
from textual.widgets import DataTable, Input

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = sorted((ROOT / "profiles").glob("*.yaml")) + sorted(
    (ROOT / "tests" / "profiles").glob("*.yaml"))


def changed_lines(before: str, after: str) -> list[str]:
    return [line for line in difflib.unified_diff(before.splitlines(), after.splitlines(),
                                                  lineterm="", n=0)
            if line[:1] in "+-" and not line.startswith(("+++", "---"))]


def opened(path: Path):
    form = form_from_profile(load_profile(path))
    return form, ProfileFile.read(path, form)


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_a_shipped_profile_saved_unedited_is_the_same_bytes(path):
    form, file = opened(path)
    assert file is not None
    assert saved_text(form, path, file) == path.read_text(encoding="utf-8")


def test_one_edited_setting_changes_its_line_alone():
    path = ROOT / "profiles" / "default.yaml"
    form, file = opened(path)
    form.protocol["repeats"] = "9"
    text = saved_text(form, path, file)
    assert changed_lines(path.read_text(encoding="utf-8"), text) == [
        "-  repeats: 3", "+  repeats: 9"]


def test_a_dataset_set_in_the_form_is_written_relative_to_the_profile_and_alone():
    path = ROOT / "profiles" / "generate.yaml"
    form, file = opened(path)
    form.models[1] = with_dataset(form.models[1], str(ROOT / "data" / "code-tasks.jsonl"))
    text = saved_text(form, path, file)
    assert changed_lines(path.read_text(encoding="utf-8"), text) == [
        "-    dataset: ../data/prompts-code.jsonl", "+    dataset: ../data/code-tasks.jsonl"]
    assert "# pass@1 instead" in text  # the comments under it stay


def test_a_model_added_and_one_removed_leave_the_others_text_and_comments():
    path = ROOT / "profiles" / "default.yaml"
    form, file = opened(path)
    del form.models[0]
    form.models.append({"hf": "org/new-model", "task": "text-classification"})
    text = saved_text(form, path, file)
    assert changed_lines(path.read_text(encoding="utf-8"), text) == [
        "-  - demo: demo/tiny-bert-random", "-    dataset: ../data/sentiment-mini.csv",
        "+  - hf: org/new-model", "+    task: text-classification"]
    assert "# generating: energy per token" in text


def test_paths_outside_the_profiles_checkout_stay_absolute(tmp_path):
    form, _ = opened(ROOT / "profiles" / "default.yaml")
    document = yaml.safe_load(saved_text(form, tmp_path / "elsewhere" / "copy.yaml", None))
    assert document["models"][0]["dataset"] == {"path": str(ROOT / "data" / "sentiment-mini.csv")}


def test_a_new_file_reads_as_a_user_would_write_it():
    text = profile_text({"name": "x", "models": ["demo/tiny-bert-random"],
                         "inputs": {"batch_sizes": [1, 8]}, "techniques": [
                             {"chain": [{"magnitude-prune": {"amount": 0.5}}, "dynamic-int8"]}]})
    assert text == ("name: x\nmodels:\n  - demo/tiny-bert-random\ninputs:\n"
                    "  batch_sizes: [1, 8]\ntechniques:\n"
                    "  - chain:\n      - magnitude-prune: {amount: 0.5}\n      - dynamic-int8\n")


def test_a_key_the_form_no_longer_has_is_removed_with_its_line():
    original = "name: a  # mine\nsave_models: true\nmodels: [demo/x]\n"
    before = {"name": "a", "save_models": True, "models": ["demo/x"]}
    after = {"name": "a", "models": ["demo/x"]}
    assert edited_profile_text(original, before, after) == "name: a  # mine\nmodels: [demo/x]\n"


async def test_saving_through_the_console_keeps_the_file_and_edits_one_line(tmp_path):
    checkout = tmp_path / "checkout"
    shutil.copytree(ROOT / "data", checkout / "data")
    (checkout / "profiles").mkdir()
    source = checkout / "profiles" / "default.yaml"
    shutil.copy(ROOT / "profiles" / "default.yaml", source)
    original = source.read_bytes()
    app = EnergyConsoleApp(load_profile(source), results_root=tmp_path / "results",
                           profiles_dir=source.parent, profile_path=source)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = app.screen

        async def until(condition) -> None:
            for _ in range(400):
                if condition():
                    return
                await pilot.pause(0.05)
            raise AssertionError("timed out")

        await until(lambda: screen.profile is not None)

        async def save() -> None:
            before = source.stat().st_mtime_ns
            await pilot.press("ctrl+s")
            await until(lambda: app.screen.query("#answer"))
            assert app.screen.query_one("#answer", Input).value == "default"
            await pilot.press("enter")
            await until(lambda: app.screen is screen and source.stat().st_mtime_ns != before)

        await save()
        assert source.read_bytes() == original
        settings = screen.query_one("#settings", DataTable)
        settings.focus()
        settings.move_cursor(row=settings.get_row_index("warmup"))
        await pilot.press("enter")
        await until(lambda: app.screen.query("#answer"))
        await pilot.press("ctrl+u", "7", "enter")
        await until(lambda: app.screen is screen)
        await save()
    assert changed_lines(original.decode(), source.read_text(encoding="utf-8")) == [
        "-  warmup: 5", "+  warmup: 7"]

"""The setup screen's add-model dialog: a source picker beside the typed model."""

from __future__ import annotations

from energy_console.tui.app import EnergyConsoleApp
from energy_console.tui.screens.dialogs import AddModelScreen
from energy_console.tui.widgets.model_picker import ModelPicker
from textual.widgets import Input, Label, Select


async def _dialog(pilot) -> AddModelScreen:
    await pilot.press("a")
    for _ in range(40):
        await pilot.pause(0.05)
        if isinstance(pilot.app.screen, AddModelScreen):
            return pilot.app.screen
    raise AssertionError("the add-model dialog did not open")


async def _add(pilot, dialog: AddModelScreen, source: str, text: str) -> None:
    dialog.query_one("#model-source", Select).value = source
    await pilot.pause()
    field = dialog.query_one("#model-ref", Input)
    field.value = text
    field.focus()
    await pilot.press("enter")
    await pilot.pause(0.1)


async def test_a_picked_source_adds_its_entry_and_a_bad_ref_is_named(tmp_path):
    (tmp_path / "net.onnx").write_bytes(b"graph")
    app = EnergyConsoleApp(results_root=tmp_path / "results", profiles_dir=tmp_path / "profiles")
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        setup = app.screen
        dialog = await _dialog(pilot)
        await _add(pilot, dialog, "factory", "not a callable")
        assert "package.module:callable" in str(dialog.query_one("#problem", Label).render())
        await _add(pilot, dialog, "onnx", str(tmp_path / "net.onnx"))
        assert app.screen is setup
        dialog = await _dialog(pilot)
        await _add(pilot, dialog, "torchvision", "resnet18")
        entries = setup.query_one(ModelPicker).chosen_entries()
        assert {"onnx": str(tmp_path / "net.onnx")} in entries
        assert {"torchvision": "resnet18"} in entries

"""What you opened is what you see: a profile's models and techniques (chains included) are
listed first, ticked, in its order and in view at 80×24 and 120×40; a model or chain added is
listed, highlighted, in view, focused and confirmed in the status line; every footer keeps Quit
and Help at 80×24."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from energy_console.core.session.profile_check import load_profile
from energy_console.tui.app import EnergyConsoleApp
from textual.widgets import Input, SelectionList, Static

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = sorted((ROOT / "profiles").glob("*.yaml"))
SIZES = [(80, 24), (120, 40)]


async def until(pilot, condition, what: str, timeout_s: float = 30.0) -> None:
    for _ in range(int(timeout_s / 0.05)):
        if condition():
            return
        await pilot.pause(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def in_view(listed: SelectionList, index: int) -> bool:
    top = listed.scroll_offset.y
    return listed.region.height > 0 and top <= index < top + listed.content_size.height


def summary(screen) -> str:
    return str(screen.query_one("#summary", Static).render())


async def answer(pilot, key: str, text: str) -> None:
    """Open the dialog behind `key`, give its field `text` and press Enter. The field takes the
    text whole: typed key by key, each key waited for the console to settle, seconds in all, and
    typing is not what these tests check (tests/test_tui_setup.py and test_tui_profiles.py type
    into the same dialogs)."""
    screen = pilot.app.screen
    await pilot.press(key)
    await until(pilot, lambda: pilot.app.screen is not screen, "the dialog")
    field = pilot.app.screen.query_one(Input)
    field.value = text
    field.focus()
    await pilot.press("enter")


def opened(path: Path, tmp_path: Path) -> EnergyConsoleApp:
    return EnergyConsoleApp(load_profile(path), results_root=tmp_path / "results",
                            profiles_dir=tmp_path / "profiles", profile_path=path)


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
async def test_a_shipped_profile_opens_with_its_models_and_techniques_ticked_and_in_view(
        tmp_path, path):
    profile = load_profile(path)
    app = opened(path, tmp_path)
    async with app.run_test(size=SIZES[0]) as pilot:
        screen = app.screen
        await until(pilot, lambda: screen.profile is not None, "the run count")
        for size in SIZES:  # 80×24, then the same screen at 120×40
            await pilot.resize_terminal(*size)
            await pilot.pause()
            for list_id, count in (("#models", len(profile.models)),
                                   ("#techniques", len(profile.techniques))):
                listed = screen.query_one(list_id, SelectionList)
                ticked = [i for i in range(listed.option_count)
                          if listed.get_option_at_index(i).value in listed.selected]
                assert ticked == list(range(count)), f"{list_id} does not list the profile first"
                assert all(in_view(listed, i) for i in ticked), \
                    f"{list_id} hides a ticked entry at {size}"
        techniques = screen.query_one("#techniques", SelectionList)
        shown = [str(techniques.get_option_at_index(i).prompt) for i in range(
            len(profile.techniques))]
        assert sum(p.startswith("chain:") for p in shown) == sum(
            t.is_chain for t in profile.techniques)
        assert len(screen.profile.models) == len(profile.models)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
async def test_an_added_model_and_chain_are_highlighted_in_view_and_confirmed(tmp_path, size):
    app = opened(ROOT / "profiles" / "default.yaml", tmp_path)
    async with app.run_test(size=size) as pilot:
        screen = app.screen
        await until(pilot, lambda: screen.profile is not None, "the run count")
        await answer(pilot, "a", "org/added-model")
        await until(pilot, lambda: app.screen is screen, "the dialog to close")
        await pilot.pause()
        models = screen.query_one("#models", SelectionList)
        index = models.get_option_index("org/added-model")
        assert models.highlighted == index and in_view(models, index)
        assert "org/added-model" in models.selected and app.focused is models
        assert "✓ added org/added-model" in summary(screen)

        await answer(pilot, "c", "bf16 + dynamic-int8")
        await until(pilot, lambda: app.screen is screen, "the dialog to close")
        await pilot.pause()
        techniques = screen.query_one("#techniques", SelectionList)
        index = techniques.highlighted
        assert index is not None and in_view(techniques, index)
        assert str(techniques.get_option_at_index(index).prompt) == "chain: bf16 + dynamic-int8"
        assert app.focused is techniques
        assert "✓ added chain: bf16 + dynamic-int8" in summary(screen)
        await pilot.press("up")  # the arrow keys move the list that was highlighted
        assert techniques.highlighted == index - 1


def footer_text(app) -> str:
    return " ".join(f"{key.key_display} {key.description}" for key in app.screen.query(
        "FooterKey") if key.region.width and app.screen.region.contains_region(key.region))


async def test_every_screens_footer_keeps_quit_and_help_at_80x24(tmp_path):
    session = Path(shutil.copytree(ROOT / "tests" / "data" / "finished-session",
                                   tmp_path / "session"))
    app = EnergyConsoleApp(load_profile(ROOT / "profiles" / "default.yaml"),
                           results_root=tmp_path, profiles_dir=tmp_path / "profiles")
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: app.screen.profile is not None, "the setup screen")
        seen = {}
        from energy_console.tui.screens.live import LiveScreen

        await app.push_screen(LiveScreen(session))
        await until(pilot, lambda: app.screen.snapshot is not None, "the live view")
        for keys, name in (((), "live"), (("r",), "results"), (("p",), "plots"),
                           (("escape", "t"), "trade-offs")):
            for key in keys:
                await pilot.press(key)
            await pilot.pause(0.3)
            seen[name] = footer_text(app)
        app.pop_screen()
        app.pop_screen()
        app.pop_screen()
        await pilot.pause(0.3)
        seen["setup"] = footer_text(app)
    for name, text in seen.items():
        assert "q Quit" in text and "? Help" in text, f"{name}: {text}"

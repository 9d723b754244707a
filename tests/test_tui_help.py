"""Help and key hints are built from the live bindings: every binding shows, none drifts."""

from __future__ import annotations

from energy_console.tui.app import EnergyConsoleApp
from energy_console.tui.keys import KeyHelp, action_links
from energy_console.tui.screens.dialogs import HelpScreen
from energy_console.tui.screens.live import LiveScreen
from energy_console.tui.screens.setup import SetupScreen
from textual.content import Content
from textual.widgets import Static

from tests.test_tui_live import write_session


def declared(app, screen_class) -> list[tuple[str, str]]:
    """(key as displayed, description) of every binding the screen and the app declare."""
    return [(app.get_key_display(binding), binding.description)
            for declaration in (*screen_class.BINDINGS, *EnergyConsoleApp.BINDINGS)
            for binding in declaration.make_bindings([declaration])]


async def open_help(pilot) -> str:
    await pilot.press("question_mark")
    await pilot.pause()
    assert isinstance(pilot.app.screen, HelpScreen)
    return str(pilot.app.screen.query_one(Static).render())


def assert_listed(text: str, pairs: list[tuple[str, str]]) -> None:
    lines = text.splitlines()
    for key, description in pairs:
        assert any(key in line and line.rstrip().endswith(description) for line in lines), \
            (key, description)


async def test_help_from_the_setup_screen_lists_each_of_its_bindings_and_the_apps(tmp_path):
    app = EnergyConsoleApp(results_root=tmp_path / "results", profiles_dir=tmp_path / "profiles")
    async with app.run_test(size=(80, 40)) as pilot:
        await pilot.pause()
        assert isinstance(app.screen, SetupScreen)
        text = await open_help(pilot)
        assert_listed(text, declared(app, SetupScreen))
        assert "Enter on a setting" in text  # the screen's HELP tips


async def test_help_from_the_live_screen_lists_each_of_its_bindings_and_the_apps(tmp_path):
    app = EnergyConsoleApp(attach=write_session(tmp_path / "s"), results_root=tmp_path)
    async with app.run_test(size=(80, 40)) as pilot:
        await pilot.pause()
        assert isinstance(app.screen, LiveScreen)
        text = await open_help(pilot)
        assert_listed(text, declared(app, LiveScreen))
        assert "Start" not in text  # the setup screen's keys are not this screen's
        # how to come back after leaving it running: the exact command
        assert f"energy-console attach {tmp_path / 's'}" in text


async def test_the_setup_action_line_is_its_bindings_as_links(tmp_path):
    app = EnergyConsoleApp(results_root=tmp_path / "results", profiles_dir=tmp_path / "profiles")
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        line = str(app.screen.query_one("#actions", Static).render())
        for key, description in declared(app, SetupScreen)[:len(SetupScreen.BINDINGS)]:
            assert f"{description} {key}" in line


def test_key_hints_are_not_read_as_markup():
    links = action_links((KeyHelp("[", "Open [b]bracket[/b]", "screen.open", shown=True),))
    assert Content.from_markup(links).plain == "Open [b]bracket[/b] ["


async def test_quit_buttons_show_their_keys_in_brackets(tmp_path):
    from energy_console.tui.screens.dialogs import QuitScreen
    from textual.widgets import Button

    app = EnergyConsoleApp(results_root=tmp_path / "results", profiles_dir=tmp_path / "profiles")
    async with app.run_test(size=(80, 24)) as pilot:
        app.push_screen(QuitScreen())
        await pilot.pause()
        labels = [str(b.label) for b in app.screen.query(Button)]
        assert labels == ["Stop it [s]", "Leave it running [l]", "Stay [esc]"]

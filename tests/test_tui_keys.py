"""Keys a user can trust: Enter in the quit dialog keeps the measurement going, a burst of keys
all lands, and text that holds brackets reads as written."""

from __future__ import annotations

import asyncio
import subprocess
import sys

import energy_console.core.compression as compression
import pytest
from energy_console.core.compression import Technique
from energy_console.tui.app import EnergyConsoleApp, launch
from energy_console.tui.screens.dialogs import QuitScreen
from energy_console.tui.screens.live import LiveScreen
from energy_console.tui.screens.setup import SetupScreen
from textual.widgets import SelectionList, Static

from tests.test_tui_live import write_session
from tests.test_tui_profiles import wait_for


def _sleeper(request) -> int:
    """A live process standing in for a runner, ended after the test."""
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    request.addfinalizer(process.kill)
    return process.pid


async def test_enter_in_the_quit_dialog_leaves_the_session_running(tmp_path, request):
    session = write_session(tmp_path / "s", finished=False, runner_pid=_sleeper(request))
    app = EnergyConsoleApp(attach=session, results_root=tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, LiveScreen)
                       and app.screen.session_running, "the running session")
        await pilot.press("q")
        await wait_for(pilot, lambda: isinstance(app.screen, QuitScreen), "the quit dialog")
        assert app.screen.focused is not None and app.screen.focused.id == "leave"
        await pilot.press("enter")
        await wait_for(pilot, lambda: not app.is_running, "the console to quit")
    assert not (session / "control").exists()  # no stop was sent


def test_leaving_a_session_running_prints_the_command_that_comes_back(tmp_path, request,
                                                                     monkeypatch, capsys):
    """`energy-console attach` as the user starts it, the console quit with "Leave it running"
    (l): the exact command that reopens the session is on stdout."""
    session = write_session(tmp_path / "my session", finished=False,
                            runner_pid=_sleeper(request))
    monkeypatch.chdir(tmp_path)

    async def leave(app: EnergyConsoleApp) -> None:
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_for(pilot, lambda: isinstance(app.screen, LiveScreen)
                           and app.screen.session_running, "the running session")
            await pilot.press("q")
            await wait_for(pilot, lambda: isinstance(app.screen, QuitScreen), "the quit dialog")
            await pilot.press("l")
            await wait_for(pilot, lambda: not app.is_running, "the console to quit")

    monkeypatch.setattr(EnergyConsoleApp, "run", lambda app: asyncio.run(leave(app)))
    assert launch(attach=session, results_root=tmp_path) == 0
    assert "\n  energy-console attach 'my session'\n" in capsys.readouterr().out
    assert not (session / "control").exists()


@pytest.mark.session  # slow tier
async def test_a_burst_of_ticks_all_lands(tmp_path):
    """Keys pressed at once, from the first frame on (while saved profiles are still being read)
    and across techniques whose parameter table is built on the way."""
    app = EnergyConsoleApp(results_root=tmp_path / "results", profiles_dir=tmp_path / "p")
    ticks = list(compression.techniques()).index("magnitude-prune")  # through one with params
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("down", "space", "down", "space", "down", "space", "tab",
                          *["down", "space"] * ticks)
        screen = app.screen
        models = screen.query_one("#models", SelectionList)
        techniques = screen.query_one("#techniques", SelectionList)
        enabled = [o.value for o in techniques.options if not o.disabled]
        assert enabled[0] == "baseline" and len(enabled) > ticks + 1
        # baseline stays ticked; each down + space ticks the next technique the machine offers
        expected = enabled[:ticks + 1]
        await wait_for(pilot, lambda: techniques.selected == expected, "every technique tick",
                       timeout_s=10)
        assert len(models.selected) == 4
        assert any(compression.techniques()[name].params for name in expected)
        await wait_for(pilot, lambda: screen.profile is not None
                       and len(screen.profile.techniques) == ticks + 1, "the count to follow")


async def test_brackets_in_errors_and_reasons_are_shown_not_read_as_markup(tmp_path,
                                                                          monkeypatch):
    # as on a machine without optimum-quanto: the reason names the pip extra in brackets
    monkeypatch.setattr(Technique, "missing_packages",
                        lambda self: ["optimum.quanto"] if self.extra == "quanto" else [])
    app = EnergyConsoleApp(results_root=tmp_path / "results", profiles_dir=tmp_path / "p")
    async with app.run_test(size=(80, 24)) as pilot:
        screen = app.screen
        assert isinstance(screen, SetupScreen)
        prompts = [str(o.prompt) for o in screen.query_one("#techniques", SelectionList).options]
        assert any("pip install 'energy-console[quanto]'" in p for p in prompts)
        screen.set_field("batch_sizes", "[1]")
        await pilot.pause()
        assert "'[1]' is not a list" in str(screen.query_one("#summary", Static).render())

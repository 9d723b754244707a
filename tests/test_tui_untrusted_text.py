"""Text from outside shown by the console is text: a recorded session whose folder name, a model
name and the skipped runs' reason hold terminal controls (ESC, OSC, CSI, BEL, C1, bidi) and Rich /
Textual markup, on every screen of the console."""

from __future__ import annotations

import asyncio
import csv
import json
import re
import shutil
from pathlib import Path

import pytest
from energy_console.tui.app import EnergyConsoleApp
from energy_console.tui.screens.dialogs import (
    AddModelScreen,
    AskScreen,
    ChooseScreen,
    HelpScreen,
    PickScreen,
)
from energy_console.tui.screens.live import LiveScreen
from energy_console.tui.screens.plots import PlotsScreen
from energy_console.tui.screens.results import ResultsScreen
from energy_console.tui.screens.setup import SetupScreen
from energy_console.tui.screens.tradeoff import TradeOffScreen
from energy_console.tui.selection import model_entry
from energy_console.tui.widgets.model_picker import ModelPicker
from rich.style import Style
from rich.text import Text
from textual.geometry import Region
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import DataTable, Footer, Input, OptionList, RichLog, TabbedContent
from textual_plotext import PlotextPlot

RECORDED = Path(__file__).parent / "data" / "finished-session"
MODEL = "demo/tiny-bert-random"
REASON = "sparse-2:4 runs on cuda only, not on cpu"
MARKUP = "[link=https://evil.example/]x[/link][bold]B[@click=app.quit]Q[/]"
CONTROLS = "\x1b]0;owned\x07\x1b[2J\x9b31m\u202e"
HOSTILE_MODEL = f"demo/{CONTROLS}[bold]M[@click=app.quit]q[/]"
HOSTILE_REASON = f"bad config {CONTROLS}{MARKUP}"
HOSTILE_FOLDER = f"s{CONTROLS}[bold]F[@click=app.quit]f"  # a folder name holds no "/"
UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def _hostile(value: object) -> object:
    if isinstance(value, str):
        return value.replace(MODEL, HOSTILE_MODEL).replace(REASON, HOSTILE_REASON)
    if isinstance(value, dict):
        return {k: _hostile(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_hostile(v) for v in value]
    return value


def _hostile_copy(folder: Path) -> Path:
    """A copy of the recorded session with hostile names and reasons, in a hostile folder."""
    path = folder / HOSTILE_FOLDER
    shutil.copytree(RECORDED, path)
    events = [json.dumps(_hostile(json.loads(line)))
              for line in (RECORDED / "events.jsonl").read_text().splitlines() if line.strip()]
    (path / "events.jsonl").write_text("\n".join(events) + "\n")
    with (RECORDED / "runs.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    with (path / "runs.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(_hostile(row) for row in rows)
    return path


@pytest.fixture
def session(tmp_path: Path) -> Path:
    return _hostile_copy(tmp_path)


def _rendered(widget: Widget) -> tuple[str, list[str]]:
    """What a widget paints now: its text, and the links and click actions of its segments."""
    width, height = widget.size
    if not widget.display or not width or not height:
        return "", []
    if isinstance(widget, RichLog):  # every line written, not only those scrolled into view
        strips = list(widget.lines)
    elif isinstance(widget, PlotextPlot):  # drawn by plotext as ANSI text
        rendered = widget.render()
        assert isinstance(rendered, Text)
        return rendered.plain, [s.style.link for s in rendered.spans
                                if isinstance(s.style, Style) and s.style.link]
    else:
        strips = widget.render_lines(Region(0, 0, width, height))
    segments = [s for strip in strips for s in strip]
    links = [s.style.link for s in segments if s.style is not None and s.style.link]
    links += [s.style.meta["@click"] for s in segments
              if s.style is not None and "@click" in s.style.meta]
    return "\n".join(strip.text for strip in strips), links


def _check_screen(screen: Screen) -> str:
    """Every visible widget's painted text (DataTable cells and option prompts too): no control
    character and no link (the footer's keys aside); returns all the text, wrapped lines
    joined."""
    texts = []
    for widget in screen.query("*"):
        if widget.id == "actions" or isinstance(widget, Footer) or any(
                isinstance(a, Footer) for a in widget.ancestors):
            continue  # the console's own keys, as links that run their actions
        text, links = _rendered(widget)
        assert not UNSAFE.search(text), (widget, text)
        assert not links, (widget, links)
        texts.append(text)
    for table in screen.query(DataTable):
        for row in range(table.row_count):
            for cell in table.get_row_at(row):
                assert not isinstance(cell, str), "a str cell is read as markup"
                assert not UNSAFE.search(str(cell)), cell
    for options in screen.query(OptionList):
        for index in range(options.option_count):
            prompt = options.get_option_at_index(index).prompt
            assert not (isinstance(prompt, str) and "[" in prompt), "str prompts are markup"
            assert not UNSAFE.search(str(prompt)), prompt
            texts.append(str(prompt))
    return re.sub(r" *\n", "", "\n".join(texts))  # lines wrapped in a dialog or the log, joined


async def _settle(pilot, screen_type: type[Screen]) -> Screen:
    for _ in range(100):
        await pilot.pause(0.05)
        screen = pilot.app.screen
        if isinstance(screen, screen_type) and (
                not isinstance(screen, LiveScreen) or screen.snapshot is not None):
            break
    assert isinstance(pilot.app.screen, screen_type)
    await pilot.pause(0.1)
    return pilot.app.screen


@pytest.fixture(scope="module")
def views(tmp_path_factory) -> dict[str, object]:
    """One console on the hostile session visits the live, results, trade-off and plot views;
    each screen passes _check_screen as it is shown, and what the tests below read is kept (one
    app for the four of them: they only read what is painted)."""
    session = _hostile_copy(tmp_path_factory.mktemp("views"))
    run_id = next(row["run_id"] for row in csv.DictReader((session / "runs.csv").open())
                  if row["model"] == HOSTILE_MODEL and row["status"] == "finished")
    seen: dict[str, object] = {}

    async def visit() -> None:
        app = EnergyConsoleApp(attach=session, results_root=session.parent)
        async with app.run_test(size=(240, 60)) as pilot:
            live = await _settle(pilot, LiveScreen)
            seen["live"] = _check_screen(live)
            seen["title"] = app.title
            await pilot.click("#title")
            seen["running after a click on the title"] = app.is_running and app.screen is live

            await pilot.press("r")
            results = await _settle(pilot, ResultsScreen)
            seen["results"] = _check_screen(results)
            table = results.query_one(DataTable)
            seen["reasons"] = [str(table.get_cell_at((row, table.get_column_index("reason"))))
                               for row in range(table.row_count)]
            seen["running on the results"] = app.is_running

            await pilot.press("t")
            seen["trade-offs"] = _check_screen(await _settle(pilot, TradeOffScreen))

            app.push_screen(PlotsScreen(session, run_id))
            plots = await _settle(pilot, PlotsScreen)
            for name in ("quality", "size", "power"):
                plots.query_one(TabbedContent).active = name
                await pilot.pause(0.2)
                seen[f"plot {name}"] = _check_screen(plots)

    asyncio.run(visit())
    return seen


def test_the_live_view_shows_hostile_text_as_text(views):
    text = views["live"]
    assert "[bold]F[@click=app.quit]f" in text  # the folder name in the title, literally
    assert "\\x1b]0;owned\\x07" in text  # controls as visible escapes
    assert "[bold]M[@click=app.quit]q[/]" in text  # the model in the runs table
    assert f"{MARKUP}" in text  # the reason in the log pane
    assert "owned" not in views["title"] and not UNSAFE.search(views["title"])
    assert views["running after a click on the title"]


def test_the_results_view_shows_hostile_text_as_text(views):
    text = views["results"]
    assert "[bold]F[@click=app.quit]f" in text
    assert "[bold]M[@click=app.quit]q[/]" in text
    assert f"bad config \\x1b]0;owned\\x07\\x1b[2J\\x9b31m\\u202e{MARKUP}" in views["reasons"]
    assert views["running on the results"]


def test_the_trade_offs_view_shows_hostile_text_as_text(views):
    text = views["trade-offs"]
    assert "[bold]M[@click=app.quit]q[/]" in text  # the model over its group's table
    assert "[bold]F[@click=app.quit]f" in text


def test_the_plots_show_hostile_text_as_text(views):
    for name in ("quality", "size"):  # the power plot's title names no model
        text = views[f"plot {name}"]
        assert "[bold]M[@click=app.quit]q[/]" in text  # plot titles
        assert "\\x1b]0;owned" in text


async def test_the_dialogs_show_hostile_text_as_text(session: Path):
    app = EnergyConsoleApp(attach=session, results_root=session.parent)
    async with app.run_test(size=(240, 60)) as pilot:
        await _settle(pilot, LiveScreen)
        await pilot.press("question_mark")
        _check_screen(await _settle(pilot, HelpScreen))
        await pilot.press("escape")
        await pilot.press("o")  # the session list names the hostile folder
        text = _check_screen(await _settle(pilot, PickScreen))
        assert "[bold]F[@click=app.quit]f" in text
        await pilot.press("escape")
        app.push_screen(ChooseScreen(HOSTILE_REASON, [(HOSTILE_FOLDER, HOSTILE_REASON)], ""))
        text = _check_screen(await _settle(pilot, ChooseScreen))
        assert text.count(MARKUP) == 2
        await pilot.press("escape")
        app.push_screen(AskScreen(HOSTILE_REASON, "", HOSTILE_REASON,
                                  check=lambda answer: HOSTILE_REASON))
        ask = await _settle(pilot, AskScreen)
        await pilot.press("enter")  # the check's problem is shown
        await pilot.pause(0.1)
        assert _check_screen(ask).count("[bold]B[@click=app.quit]Q[/]") == 3
        assert app.is_running


async def test_the_setup_screen_shows_hostile_model_names_and_problems_as_text(tmp_path: Path):
    folder = tmp_path / f"m{CONTROLS}[bold]B[@click=app.quit]Q"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": f"{CONTROLS}{MARKUP}"}))
    app = EnergyConsoleApp(results_root=tmp_path / "results", profiles_dir=tmp_path / "profiles")
    async with app.run_test(size=(200, 50)) as pilot:
        setup = await _settle(pilot, SetupScreen)
        setup.query_one(ModelPicker).add(model_entry(str(folder), "text-classification"))
        await pilot.pause(0.2)
        text = _check_screen(setup)
        assert "[bold]B[@click=app.quit]Q" in text
        await pilot.press("a")
        dialog = await _settle(pilot, AddModelScreen)
        dialog.query_one(Input).value = f"{folder}-gone"
        dialog.query_one(Input).focus()
        await pilot.press("enter")  # no such folder: the problem quotes the name
        await pilot.pause(0.1)
        assert "[bold]B[@click=app.quit]Q-gone" in _check_screen(dialog)
        assert app.is_running

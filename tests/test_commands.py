"""Subcommands are declared once (core.cli.COMMANDS): the parser and the console script agree."""

from __future__ import annotations

import argparse

import energy_console.tui.app as tui_app
import pytest
from energy_console.core.cli import commands as cli
from energy_console.tui import main as console


def parser_commands() -> set[str]:
    (subparsers,) = [a for a in cli.build_parser()._actions
                     if isinstance(a, argparse._SubParsersAction)]
    return set(subparsers.choices)


def test_the_parser_offers_exactly_the_declared_commands():
    assert parser_commands() == set(cli.COMMANDS)


@pytest.mark.parametrize("name", sorted(parser_commands()))
def test_every_subcommand_is_routed_headless_or_full_screen(name, monkeypatch, tmp_path):
    calls = []
    monkeypatch.setattr(console, "headless_main", lambda argv: calls.append(("headless", argv)))
    monkeypatch.setattr(tui_app, "launch", lambda **kw: calls.append(("full-screen", kw)))
    (tmp_path / "events.jsonl").touch()  # a session to attach to

    console.main([name, str(tmp_path)] if cli.COMMANDS[name].full_screen else [name])

    if cli.COMMANDS[name].full_screen:  # opened as a view, not as a profile named `name`
        assert [kind for kind, _ in calls] == ["full-screen"]
        assert "profile_path" not in calls[0][1]
    else:
        assert calls == [("headless", [name])]


def test_a_lone_argument_that_is_no_command_opens_the_console_with_that_profile(monkeypatch):
    calls = []
    monkeypatch.setattr(tui_app, "launch", lambda **kw: calls.append(kw))
    console.main(["profiles/default.yaml"])
    assert calls == [{"profile_path": "profiles/default.yaml"}]

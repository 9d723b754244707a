"""The `energy-console` console script: full-screen views here, everything else in core.cli.

Which command is which is declared once, in core.cli.COMMANDS.
"""

from __future__ import annotations

import sys
from pathlib import Path

from energy_console.core.cli.commands import COMMANDS, build_parser
from energy_console.core.cli.commands import main as headless_main
from energy_console.core.cli.conventions import EXIT_BAD_INPUT


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    command = COMMANDS.get(argv[0]) if argv else None
    if command is not None and command.full_screen:
        return FULL_SCREEN[argv[0]](argv)
    if command is not None or len(argv) > 1 or (argv and argv[0].startswith("-")):
        return headless_main(argv)
    from energy_console.tui.app import launch

    return launch(profile_path=argv[0] if argv else None)


def attach(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    from energy_console.core.store.session_dir import default_results_root, newest_session

    root = args.results_dir or default_results_root()
    session = args.session or newest_session(root)
    if session is None or not (Path(session) / "events.jsonl").exists():
        print(f"error: no session to attach to under {root}" if session is None else
              f"error: {session} is not a session directory (no events.jsonl)",
              file=sys.stderr)
        return EXIT_BAD_INPUT
    from energy_console.tui.app import launch

    return launch(attach=Path(session), results_root=root)


FULL_SCREEN = {"attach": attach}  # one view per core.cli command declared full_screen

"""The `energy-console` console script: full-screen views here, everything else in core.cli."""

from __future__ import annotations

import sys
from pathlib import Path

from energy_console.core.cli import EXIT_BAD_INPUT, build_parser
from energy_console.core.cli import main as headless_main

HEADLESS = {"run", "list", "sensors", "report", "-h", "--help", "--version"}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in HEADLESS:
        return headless_main(argv)
    if argv and argv[0] == "attach":
        args = build_parser().parse_args(argv)
        from energy_console.core.results import default_results_root, newest_session

        root = args.results_dir or default_results_root()
        session = args.session or newest_session(root)
        if session is None or not (Path(session) / "events.jsonl").exists():
            print(f"error: no session to attach to under {root}" if session is None else
                  f"error: {session} is not a session directory (no events.jsonl)",
                  file=sys.stderr)
            return EXIT_BAD_INPUT
        from energy_console.tui.app import launch

        return launch(attach=Path(session), results_root=root)
    if len(argv) > 1 or (argv and argv[0].startswith("-")):
        return headless_main(argv)
    from energy_console.tui.app import launch

    return launch(profile_path=argv[0] if argv else None)

"""`energy-console list` (models, techniques, sessions) and `sensors`."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from energy_console.core.cli.conventions import EXIT_OK, results_root
from energy_console.core.spec.text import printable


def cmd_list(args: argparse.Namespace) -> int:
    if args.what == "models":
        from energy_console.core.models.demo import describe_all

        print("Built-in demo models (random weights, offline):")
        for m in describe_all():
            print(f"  {m.ref:<26} {m.task:<22} {m.summary}")
        print("\nAlso: any Hugging Face hub id (`hf: ID` with `task:`), or a local folder in "
              "save_pretrained layout (`path: DIR`).")
    elif args.what == "techniques":
        from energy_console.core.compression.catalogue import format_techniques

        print(format_techniques())
    else:
        from energy_console.core.store.session_dir import list_sessions

        sessions = list_sessions(results_root(args))
        if not sessions:
            print(f"no sessions under {results_root(args)}")
        for path in sessions:
            print(session_line(path))
    return EXIT_OK


def session_line(path: Path) -> str:
    """One session as `list sessions` shows it: where, status, run counts, when it started."""
    from energy_console.core.store.follow import read_session

    try:
        session = read_session(path)
    except (OSError, ValueError) as exc:
        return printable(f"{path}  unreadable: {exc}")
    total = session.total_runs
    runs = (f"{total} run{'' if total == 1 else 's'}: {session.finished} finished, "
            f"{session.skipped} skipped, {session.failed} failed")
    started = session.info.get("started_at")
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(started)) \
        if isinstance(started, (int, float)) else "start unknown"
    # a folder in a shared results dir may be named by anyone: its name is shown, never run
    return printable(f"{path}  {session.status:<11}  {runs:<42}  {when}")


def cmd_sensors() -> int:
    from energy_console.core.measure.sensors.report import format_sensors_report, sensors_report

    print(format_sensors_report(sensors_report()))
    return EXIT_OK

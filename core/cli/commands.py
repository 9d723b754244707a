"""The headless commands, declared once, their parser and `main`: run (cli.run), list and
sensors (cli.listing), report and compare (cli.report), doctor (cli.doctor). The console script
is tui.main:main, which hands everything but the full-screen views to `main` here (core never
imports textual)."""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from energy_console.core.cli.conventions import EXIT_OK
from energy_console.core.cli.listing import cmd_list, cmd_sensors
from energy_console.core.cli.report import cmd_compare, cmd_report


@dataclass(frozen=True)
class Command:
    help: str
    full_screen: bool = False  # the console script opens it in the TUI (tui.main), not `main`


# Every subcommand, declared once: the parser and the console script's routing both read it.
COMMANDS: dict[str, Command] = {
    "run": Command("run a profile headless, with a progress display"),
    "list": Command("list models, techniques or sessions"),
    "sensors": Command("what this machine can measure, and why the rest is missing"),
    "report": Command("print a session's runs with deltas against baseline"),
    "compare": Command("set two sessions side by side: each run's change from A to B"),
    "attach": Command("open the live view of a running or finished session", full_screen=True),
    "doctor": Command("check this box: what will be measured, how well, and the fixes"),
}


def version() -> str:
    from importlib import metadata

    try:
        return metadata.version("energy-console")
    except metadata.PackageNotFoundError:
        return "unknown"


class VersionAction(argparse.Action):
    """argparse's `version` action, asking the installed metadata only when --version is given
    (that look-up costs every other command a tenth of a second)."""

    def __call__(self, parser, namespace, values, option_string=None):
        print(f"energy-console {version()}")
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="energy-console",
        description="Measure what compressing an ML model does to its energy use. "
        "Without a command, opens the console (optionally with PROFILE loaded).",
    )
    parser.add_argument("--version", action=VersionAction, nargs=0,
                        help="show program's version number and exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    command = {name: sub.add_parser(name, help=c.help) for name, c in COMMANDS.items()}

    run = command["run"]
    run.add_argument("profile", help="profile YAML, e.g. profiles/default.yaml")
    run.add_argument("--results-dir", type=Path, default=None,
                     help="where sessions go (default: $ENERGY_CONSOLE_RESULTS_DIR or results/)")
    run.add_argument("--device", default=None, help="override the profile: auto, cpu, cuda, cuda:N")
    run.add_argument("--session-dir", type=Path, default=None,
                     help="write into this session directory (used by the console)")
    run.add_argument("--resume", type=Path, default=None, metavar="SESSION_DIR",
                     help="continue a session: runs it finished are not run again (the profile "
                     "must be the one the session was started with)")
    run.add_argument("--resume-with-changes", action="store_true",
                     help="with --resume: continue even though the profile differs from the "
                     "session's (the earlier profile is kept as profile.before-resume-N.yaml)")
    spread = run.add_mutually_exclusive_group()
    spread.add_argument("--gpus", default=None, metavar="all|0,2,5",
                        help="one measurement stream per GPU of this machine, at once (each GPU "
                        "locked on its own; CPU energy of overlapping runs is shared)")
    spread.add_argument("--ray", default=None, metavar="auto|ADDRESS",
                        help="spread the runs over a Ray cluster, one per GPU of each node "
                        "(needs the `ray` extra; see README, Sweeps over many GPUs)")
    run.add_argument("--quiet", action="store_true", help="no progress display")
    run.add_argument("--mlflow", action="store_true",
                     help="log each run to MLflow (MLFLOW_TRACKING_URI, else SESSION/mlruns)")
    run.add_argument("--detach", action="store_true",
                     help="start the runner in its own session and return at once; the "
                     "measurement outlives this terminal (follow it with `attach`)")

    lister = command["list"]
    lister.add_argument("what", choices=("models", "techniques", "sessions"))
    lister.add_argument("--results-dir", type=Path, default=None)

    report = command["report"]
    report.add_argument("session", type=Path, nargs="?", default=None,
                        help="session directory (default: the newest)")
    report.add_argument("--results-dir", type=Path, default=None)
    report.add_argument("--format", choices=("table", "csv", "markdown", "json"), default="table",
                        help="table (fits the terminal), csv (runs.csv plus changes and their "
                        "intervals), markdown (the study's summary) or json")
    report.add_argument("--out", type=Path, default=None, metavar="DIR",
                        help="also write report.md, report.csv and PNG plots into DIR")

    compare = command["compare"]
    compare.add_argument("a", type=Path, help="session directory A (the reference)")
    compare.add_argument("b", type=Path, help="session directory B")

    attach = command["attach"]
    attach.add_argument("session", type=Path, nargs="?", default=None)
    attach.add_argument("--results-dir", type=Path, default=None)

    doctor = command["doctor"]
    doctor.add_argument("--results-dir", type=Path, default=None)
    doctor.add_argument("--no-gpu-load", action="store_true",
                        help="check the GPUs idle (no matmul child, no torch import)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "run":
        from energy_console.core.cli.run import cmd_run

        return cmd_run(args)
    if args.command == "list":
        return cmd_list(args)
    if args.command == "sensors":
        return cmd_sensors()
    if args.command == "report":
        return cmd_report(args)
    if args.command == "compare":
        return cmd_compare(args)
    if args.command == "doctor":
        from energy_console.core.cli.doctor import cmd_doctor

        return cmd_doctor(args)
    build_parser().print_help()
    return EXIT_OK


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    sys.exit(main())

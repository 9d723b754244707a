"""Headless commands: run, list, sensors, report. The console script is tui.main:main, which
hands everything but the full-screen views to `main` here (core never imports textual)."""

from __future__ import annotations

import argparse
import dataclasses
import os
import shutil
import sys
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from energy_console.core.store.session_dir import default_results_root, session_dir_name

EXIT_OK, EXIT_RUNS_FAILED, EXIT_BAD_INPUT, EXIT_INTERRUPTED = 0, 1, 2, 130


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
    try:
        return metadata.version("energy-console")
    except metadata.PackageNotFoundError:
        return "unknown"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="energy-console",
        description="Measure what compressing an ML model does to its energy use. "
        "Without a command, opens the console (optionally with PROFILE loaded).",
    )
    parser.add_argument("--version", action="version", version=f"energy-console {version()}")
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
        return cmd_doctor(args)
    build_parser().print_help()
    return EXIT_OK


def results_root(args) -> Path:
    return getattr(args, "results_dir", None) or default_results_root()


def cmd_run(args) -> int:
    """Load, pre-flight, then run. Nothing is created and no lock taken until the profile, its
    models, datasets, techniques and device have passed; the runner takes the lock before it
    writes into the session."""
    from energy_console.core.scale.placement import dispatch_for, runs_go_to
    from energy_console.core.session.guard import record_refusal
    from energy_console.core.session.preflight import check, resume_differences
    from energy_console.core.session.runner import Runner
    from energy_console.core.spec.profile import ProfileError, load_profile
    from energy_console.core.store.session_dir import read_runs

    try:
        profile = load_profile(args.profile)
    except ProfileError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    if args.resume_with_changes and not args.resume:
        print("error: --resume-with-changes continues a session: give it with --resume "
              "SESSION_DIR", file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        gpus = _resolve_gpus(args.gpus, profile)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    if args.ray is not None:
        from energy_console.core.scale.ray_station import ray_problem

        problem = ray_problem()
        if problem:
            print(f"error: --ray: {problem}", file=sys.stderr)
            return EXIT_BAD_INPUT
    if args.mlflow and args.detach:
        print("error: --detach starts the runner from the profile file alone; put `mlflow: true` "
              "in the profile instead of --mlflow", file=sys.stderr)
        return EXIT_BAD_INPUT
    problems = check(profile, args.device)
    if problems:
        lines = "\n".join(f"  {p}" for p in problems)
        message = (f"pre-flight found {len(problems)} problem(s) in {args.profile}; nothing was "
                   f"started:\n{lines}")
        print(f"error: {message}", file=sys.stderr)
        if args.session_dir and not args.resume:
            record_refusal(args.session_dir, message)  # a view prepared it and follows it
        return EXIT_BAD_INPUT
    done: set[str] = set()
    changes: list[str] = []
    if args.resume:
        if not (args.resume / "events.jsonl").exists():
            print(f"error: {args.resume} is not a session directory", file=sys.stderr)
            return EXIT_BAD_INPUT
        session_dir = args.resume
        try:
            changes = resume_differences(session_dir, profile, args.device)
        except ValueError as exc:
            print(f"error: {session_dir}: {exc}", file=sys.stderr)
            return EXIT_BAD_INPUT
        if changes and not args.resume_with_changes:
            lines = "\n".join(f"  {c}" for c in changes)
            print(f"error: {args.profile} differs from the profile {session_dir} was started "
                  f"with (session -> now):\n{lines}\nA resume adds to the same measurement: "
                  f"resume with {session_dir / 'profile.yaml'}, start a new session, or pass "
                  "--resume-with-changes to continue with this profile anyway (the earlier one "
                  "is kept as profile.before-resume-N.yaml)", file=sys.stderr)
            return EXIT_BAD_INPUT
        done = {r.run_id for r in read_runs(session_dir) if r.finished}
    else:
        session_dir = args.session_dir or results_root(args) / session_dir_name(profile.name)
    try:
        created = _make_dirs(session_dir)
    except OSError as exc:
        print(f"error: cannot write the session to {session_dir}: {exc.strerror}; choose "
              "another place with --results-dir or ENERGY_CONSOLE_RESULTS_DIR", file=sys.stderr)
        return EXIT_BAD_INPUT
    if args.detach:
        return _detach(args, session_dir, created)
    if args.mlflow:
        profile = dataclasses.replace(profile, mlflow=True)
    display = None if args.quiet else _progress_display()
    runner = Runner(profile, session_dir, device=args.device,
                    on_event=display.on_event if display else None, done=done,
                    resume=args.resume is not None, changes=tuple(changes),
                    dispatch=dispatch_for(runs_go_to(gpus, args.ray)))
    try:
        if display:
            with display:
                outcome = runner.run()
        else:
            outcome = runner.run()
    except KeyboardInterrupt:
        print(f"interrupted; what was measured is in {session_dir}", file=sys.stderr)
        return EXIT_INTERRUPTED
    if outcome.refused:
        _remove_empty(created)
        print(f"error: nothing was run: {outcome.message}", file=sys.stderr)
        return EXIT_RUNS_FAILED
    print(
        f"session {outcome.status}: {outcome.finished} finished, {outcome.skipped} skipped, "
        f"{outcome.failed} failed -> {outcome.path}"
    )
    if outcome.status == "failed":
        print(f"error: {outcome.message}", file=sys.stderr)
        return EXIT_RUNS_FAILED
    if outcome.failed:
        print(f"{outcome.failed} run(s) failed: reasons in {outcome.path / 'runs.csv'} and each "
              "run's worker.log", file=sys.stderr)
        return EXIT_RUNS_FAILED
    return EXIT_OK if outcome.status != "stopped" else EXIT_INTERRUPTED


def _detach(args, session_dir: Path, created: list[Path]) -> int:
    """Start the runner on its own; a busy machine is said here, not only in runner.log."""
    from energy_console.core.session.launch import start_runner
    from energy_console.core.session.machine_lock import MachineBusy, MachineLock

    probe = MachineLock(shared=bool(args.gpus or args.ray))  # GPU locks: the runner's
    try:
        probe.acquire(session_dir)
    except MachineBusy as exc:
        _remove_empty(created)
        print(f"error: nothing was run: {exc}", file=sys.stderr)
        return EXIT_RUNS_FAILED
    probe.release()  # the runner takes it again (and says so in runner.log if it lost the race)
    pid = start_runner(Path(args.profile), session_dir, args.device,
                       resume=args.resume is not None, allow_changes=args.resume_with_changes,
                       placement=("--gpus", args.gpus) if args.gpus else
                       ("--ray", args.ray) if args.ray else ())
    print(f"runner {pid} measuring into {session_dir} (output in runner.log); follow it "
          f"with: energy-console attach {session_dir}")
    return EXIT_OK


def _resolve_gpus(text: str | None, profile) -> tuple[int, ...] | None:
    """--gpus as NVML indexes (None without it); ValueError says what is wrong."""
    if text is None:
        return None
    from energy_console.core.measure.sensors.nvml import gpu_names
    from energy_console.core.scale.lanes import resolve_gpus

    return resolve_gpus(text, gpu_names(), profile.gpu_model)


def _make_dirs(path: Path) -> list[Path]:
    """mkdir -p, returning the folders it created (deepest last)."""
    missing = []
    for folder in (path, *path.parents):
        if folder.exists():
            break
        missing.append(folder)
    path.mkdir(parents=True, exist_ok=True)
    return missing[::-1]


def _remove_empty(created: list[Path]) -> None:
    """Remove the folders a refused run created, where they are still empty."""
    for folder in reversed(created):
        try:
            if folder.is_dir():
                folder.rmdir()
        except OSError:
            return


def _progress_display():
    from energy_console.core.cli.progress import ProgressDisplay

    return ProgressDisplay()


def cmd_list(args) -> int:
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
        return f"{path}  unreadable: {exc}"
    total = session.total_runs
    runs = (f"{total} run{'' if total == 1 else 's'}: {session.finished} finished, "
            f"{session.skipped} skipped, {session.failed} failed")
    started = session.info.get("started_at")
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(started)) \
        if isinstance(started, (int, float)) else "start unknown"
    return f"{path}  {session.status:<11}  {runs:<42}  {when}"


def cmd_sensors() -> int:
    from energy_console.core.measure.sensors.report import format_sensors_report, sensors_report

    print(format_sensors_report(sensors_report()))
    return EXIT_OK


def cmd_report(args) -> int:
    from energy_console.core.analysis.export import render, write_report
    from energy_console.core.store.follow import read_session
    from energy_console.core.store.session_dir import newest_session

    path = args.session or newest_session(results_root(args))
    if path is None:
        print(f"error: no sessions under {results_root(args)}", file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        session = read_session(path)
    except FileNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    width = shutil.get_terminal_size((120, 24)).columns
    print(render(session, args.format, width), end="")
    if args.out:
        try:
            written = write_report(session, args.out)
        except ImportError:
            print("error: plots need matplotlib: pip install 'energy-console[plots]'",
                  file=sys.stderr)
            return EXIT_BAD_INPUT
        except OSError as exc:
            print(f"error: cannot write the report to {args.out}: {exc.strerror}",
                  file=sys.stderr)
            return EXIT_BAD_INPUT
        print(f"wrote {len(written)} files to {args.out}: {', '.join(p.name for p in written)}",
              file=sys.stderr)
    return EXIT_OK


def cmd_compare(args) -> int:
    from energy_console.core.analysis.report import format_comparison
    from energy_console.core.store.follow import read_session

    try:
        a, b = read_session(args.a), read_session(args.b)
    except FileNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    print(format_comparison(a, b, shutil.get_terminal_size((120, 24)).columns), end="")
    return EXIT_OK


def cmd_doctor(args) -> int:
    from energy_console.core.cli.doctor import format_report, run_doctor

    report = run_doctor(results_root(args), gpu_load=not args.no_gpu_load)
    print(format_report(report), end="")
    return report.exit_status


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    sys.exit(main())

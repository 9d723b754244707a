"""`energy-console run`: load and pre-flight a profile, then measure it here, over this box's
GPUs or over a Ray cluster (scale.placement), with a progress display or detached."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from energy_console.core.cli.conventions import (
    EXIT_BAD_INPUT,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_RUNS_FAILED,
    results_root,
)
from energy_console.core.store.session_dir import session_dir_name

if TYPE_CHECKING:
    from energy_console.core.scale.placement import RunsGoTo
    from energy_console.core.spec.profile import Profile


class BadInput(Exception):
    """Why nothing was started (printed after `error: `)."""


@dataclass(frozen=True)
class RunRequest:
    """A run that passed its checks: what to measure, where the runs go, into which session."""

    profile: Profile
    runs_go_to: RunsGoTo
    session_dir: Path
    done: frozenset[str]  # run ids a resumed session finished
    changes: tuple[str, ...]  # how the profile differs from the resumed session's


def cmd_run(args: argparse.Namespace) -> int:
    """Load, pre-flight, then run. Nothing is created and no lock taken until the profile, its
    models, datasets, techniques and device have passed; the runner takes the lock before it
    writes into the session."""
    try:
        request = _checked_request(args)
    except BadInput as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    from energy_console.core.session.guard import keep_files_private

    keep_files_private(request.session_dir)
    try:
        created = _make_dirs(request.session_dir)
    except OSError as exc:
        print(f"error: cannot write the session to {request.session_dir}: {exc.strerror}; "
              "choose another place with --results-dir or ENERGY_CONSOLE_RESULTS_DIR",
              file=sys.stderr)
        return EXIT_BAD_INPUT
    if args.detach:
        return _detach(args, request.session_dir, created)
    return _measure(args, request, created)


def _checked_request(args: argparse.Namespace) -> RunRequest:
    """The profile loaded and pre-flighted, the arguments checked; BadInput says what is
    wrong (a view that prepared the session directory is told too)."""
    from energy_console.core.scale.placement import runs_go_to
    from energy_console.core.session.guard import record_refusal
    from energy_console.core.session.preflight import check
    from energy_console.core.session.profile_check import load_profile
    from energy_console.core.spec.profile import ProfileError

    try:
        profile = load_profile(args.profile)
    except ProfileError as exc:
        raise BadInput(str(exc)) from None
    if args.resume_with_changes and not args.resume:
        raise BadInput("--resume-with-changes continues a session: give it with --resume "
                       "SESSION_DIR")
    try:
        gpus = _resolve_gpus(args.gpus, profile)
    except ValueError as exc:
        raise BadInput(str(exc)) from None
    if args.ray is not None:
        from energy_console.core.scale.ray_station import ray_problem

        problem = ray_problem()
        if problem:
            raise BadInput(f"--ray: {problem}")
    if args.mlflow and args.detach:
        raise BadInput("--detach starts the runner from the profile file alone; put `mlflow: "
                       "true` in the profile instead of --mlflow")
    problems = check(profile, args.device)
    if problems:
        lines = "\n".join(f"  {p}" for p in problems)
        message = (f"pre-flight found {len(problems)} problem(s) in {args.profile}; nothing was "
                   f"started:\n{lines}")
        if args.session_dir and not args.resume:
            record_refusal(args.session_dir, message)  # a view prepared it and follows it
        raise BadInput(message)
    if args.resume:
        return _resumed(args, profile, runs_go_to(gpus, args.ray))
    session_dir = args.session_dir or results_root(args) / session_dir_name(profile.name)
    return RunRequest(profile, runs_go_to(gpus, args.ray), session_dir, frozenset(), ())


def _resumed(args: argparse.Namespace, profile: Profile, where: RunsGoTo) -> RunRequest:
    """A resume of args.resume: refused when the profile differs, unless allowed."""
    from energy_console.core.session.preflight import resume_differences
    from energy_console.core.store.session_dir import read_runs

    session_dir = args.resume
    if not (session_dir / "events.jsonl").exists():
        raise BadInput(f"{session_dir} is not a session directory")
    try:
        changes = resume_differences(session_dir, profile, args.device)
    except ValueError as exc:
        raise BadInput(f"{session_dir}: {exc}") from None
    if changes and not args.resume_with_changes:
        lines = "\n".join(f"  {c}" for c in changes)
        raise BadInput(
            f"{args.profile} differs from the profile {session_dir} was started with (session "
            f"-> now):\n{lines}\nA resume adds to the same measurement: resume with "
            f"{session_dir / 'profile.yaml'}, start a new session, or pass "
            "--resume-with-changes to continue with this profile anyway (the earlier one is "
            "kept as profile.before-resume-N.yaml)")
    done = frozenset(r.run_id for r in read_runs(session_dir) if r.finished)
    return RunRequest(profile, where, session_dir, done, tuple(changes))


def _measure(args: argparse.Namespace, request: RunRequest, created: list[Path]) -> int:
    """The session, in this process, with a progress display unless --quiet."""
    from energy_console.core.scale.placement import dispatch_for
    from energy_console.core.session.runner import Runner

    profile = dataclasses.replace(request.profile, mlflow=True) if args.mlflow \
        else request.profile
    display = None if args.quiet else _progress_display()
    runner = Runner(profile, request.session_dir, device=args.device,
                    on_event=display.on_event if display else None, done=request.done,
                    resume=args.resume is not None, changes=request.changes,
                    dispatch=dispatch_for(request.runs_go_to))
    try:
        if display:
            with display:
                outcome = runner.run()
        else:
            outcome = runner.run()
    except KeyboardInterrupt:
        print(f"interrupted; what was measured is in {request.session_dir}", file=sys.stderr)
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


def _detach(args: argparse.Namespace, session_dir: Path, created: list[Path]) -> int:
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



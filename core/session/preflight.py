"""Pre-flight: what would make a session fail, found before anything is created or locked.

`energy-console run` calls `check` after the profile loads and before it makes the session
directory or takes the machine lock; any problem refuses the session (exit 2) with every problem
listed at once, instead of hours later as a run failed or skipped for the same reason each time:

- the device: written right (a `--device` override too), and a CUDA device that torch here can
  see (asked in a subprocess: this module never imports torch, and torch only when CUDA is asked);
- models: what their source can check without loading them (a local folder and its config.json, a
  hub id in the local cache when the hub is offline);
- datasets: the file or folder exists and has the shape the model's task reads (columns, text,
  class folders); labels are checked against the model when it loads;
- techniques: known, their packages installed, and able to run on the chosen device (with
  `device: auto` the device is known only when a run starts: those checks stay per run).

`resume_differences` says how a profile differs from the one a session was started with.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from energy_console.core.spec.profile import DEVICE_PATTERN, Profile
from energy_console.core.spec.workloads import Workload

CUDA_PROBE = (
    "import json, torch; available = torch.cuda.is_available(); "
    "print(json.dumps({'available': available, "
    "'count': torch.cuda.device_count() if available else 0, "
    "'cuda': torch.version.cuda}))"
)
CUDA_PROBE_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class Problem:
    subject: str  # where in the profile: device, models[0], models[0].dataset, techniques[2]
    message: str  # what is wrong and the fix

    def __str__(self) -> str:
        return f"{self.subject}: {self.message}"


def check(profile: Profile, device: str | None = None) -> list[Problem]:
    """Every problem found in the profile as it would run here (device overrides the profile's)."""
    problems: list[Problem] = []
    requested = device or profile.device
    device_type = _check_device(requested, problems)
    for i, entry in enumerate(profile.models):
        problems += _check_model(f"models[{i}]", entry)
    for i, spec in enumerate(profile.techniques):
        problems += _check_technique(f"techniques[{i}]", spec, requested, device_type)
    return problems


# ------------------------------------------------------------------------------------ device


def _check_device(requested: str, problems: list[Problem]) -> str | None:
    """The device type runs will use (cpu, cuda), None when only a run can tell (auto)."""
    if not DEVICE_PATTERN.fullmatch(requested):
        problems.append(Problem("device", f"{requested!r} is not a device; expected auto, cpu, "
                                "cuda or cuda:N (N from 0)"))
        return None
    if requested == "auto":
        return None
    if requested == "cpu":
        return "cpu"
    index = int(requested.partition(":")[2] or 0)
    found = cuda_devices()
    if isinstance(found, str):
        problems.append(Problem("device", f"{requested}: cannot ask torch which CUDA devices "
                                f"there are ({found}); use device: cpu"))
    elif found == 0:
        problems.append(Problem("device", f"{requested} asked for, but torch sees no CUDA device "
                                "here (a CPU build of torch, or no GPU or driver); use "
                                "device: cpu (or --device cpu), or install a CUDA build of torch"))
    elif index >= found:
        problems.append(Problem("device", f"{requested} does not exist: torch sees {found} CUDA "
                                f"device(s), cuda:0..cuda:{found - 1}; choose one of them"))
    return "cuda"


def cuda_devices() -> int | str:
    """How many CUDA devices torch sees here, asked in a fresh interpreter (so the caller never
    imports torch or initialises CUDA); a string says why it could not be asked."""
    try:
        done = subprocess.run([sys.executable, "-c", CUDA_PROBE], capture_output=True,
                              text=True, timeout=CUDA_PROBE_TIMEOUT_S,
                              env=dict(os.environ, PYTHONWARNINGS="ignore"))
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"{type(exc).__name__}: {exc}"
    try:
        answer = json.loads(done.stdout.strip().splitlines()[-1])
        return int(answer["count"]) if answer["available"] else 0
    except (IndexError, ValueError, KeyError, TypeError):
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return f"exit {done.returncode}: {tail}"


# ------------------------------------------------------------------------------------ models


def _check_model(subject: str, entry) -> list[Problem]:
    from energy_console.core.models import source_for

    problems = []
    source = source_for(entry.source)
    reason = source.preflight(entry)
    if reason:
        problems.append(Problem(subject, reason))
    if entry.dataset:
        task = entry.task or source.known_task(entry.ref) or source.config_task(entry)
        reason = dataset_problem(entry, task)
        if reason:
            problems.append(Problem(f"{subject}.dataset", reason))
    apart = entry.training.dataset if entry.training is not None else None
    if apart:  # a training set apart from the evaluation data: the same shape
        task = entry.task or source.known_task(entry.ref) or source.config_task(entry)
        reason = dataset_problem(dataclasses.replace(entry, dataset=apart,
                                                     workload=Workload.INFER),
                                 task)
        if reason:
            problems.append(Problem(f"{subject}.training.dataset", reason))
    return problems


def dataset_problem(entry, task: str | None) -> str | None:
    """Why the entry's dataset cannot be read for `task` (its shape only), or None."""
    from energy_console.core.quality.dataset_check import dataset_shape_problem, scored_by_pass_at_1

    return dataset_shape_problem(entry.dataset, entry.base_dir, task,
                                 scored_by_pass_at_1(entry.workload, entry.generation))


# ------------------------------------------------------------------------------------ techniques


def _check_technique(subject: str, spec, requested: str, device_type: str | None) -> list[Problem]:
    from energy_console.core.compression import techniques

    known = techniques()
    problems = []
    for step in spec.steps:
        technique = known.get(step.name)
        if technique is None:
            problems.append(Problem(subject, f"unknown technique {step.name!r}; known: "
                                    + ", ".join(known)))
            continue
        reason = technique.unavailable_reason()
        if reason:
            problems.append(Problem(subject, f"{step.name} is not available here: {reason}; "
                                    "install it or remove the technique"))
        elif device_type and device_type not in technique.devices:
            problems.append(Problem(subject, f"{step.name} runs on {'/'.join(technique.devices)} "
                                    f"only, not on {requested}; remove it from techniques or "
                                    "measure on a device it supports"))
    return problems


# ------------------------------------------------------------------------------------ resume


def resume_differences(session_dir: Path, profile: Profile, device: str | None) -> list[str]:
    """How `profile` (run on `device`) differs from the one `session_dir` was started with:
    one line per differing field, naming both values. Raises ValueError when the session's
    profile cannot be read."""
    from energy_console.core.session.profile_check import load_profile
    from energy_console.core.spec.profile import ProfileError

    try:
        old = load_profile(session_dir / "profile.yaml")
    except (ProfileError, OSError) as exc:
        raise ValueError(f"cannot read the session's profile.yaml: {exc}") from None
    info: dict[str, Any] = {}
    try:
        info = json.loads((session_dir / "session.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        pass
    before, after = old.to_dict(), profile.to_dict()
    before["device"] = info.get("device") or old.device
    after["device"] = device or profile.device
    refs = info.get("model_refs")
    if isinstance(refs, list):  # what relative paths pointed at when the session started
        before["model folders"] = refs
        after["model folders"] = [m.resolved_ref for m in profile.models]
    lines = []
    for key in dict.fromkeys([*before, *after]):
        if before.get(key) != after.get(key):
            lines.append(f"{key}: {_show(before.get(key))} -> {_show(after.get(key))}")
    return lines


def _show(value: Any, limit: int = 160) -> str:
    text = json.dumps(value, default=str, sort_keys=True)
    return text if len(text) <= limit else text[: limit - 3] + "..."

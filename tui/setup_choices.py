"""The setup screen's pure parts: what a selection means (the order it runs in, the keys its rows
have), the labels and the summary line it shows, and typed values checked; no widgets here, so
each is tested without running the app."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from energy_console.core.compression import Param, Technique, parse_technique
from energy_console.core.spec.profile import Profile, ProfileError
from energy_console.tui.format import duration
from energy_console.tui.selection import (
    FormValues,
    build_profile,
    is_chain,
    model_label,
    profile_document,
    technique_from_text,
    technique_text,
    with_dataset,
)


@dataclass(frozen=True)
class ProfileFile:
    """A profile file as the form opened it: its text and the form's document of it (paths
    relative to its folder), so saving rewrites only what the form changed."""

    path: Path
    text: str
    document: dict[str, Any]

    @classmethod
    def read(cls, path: Path, form: FormValues) -> ProfileFile | None:
        """The file behind `form`, or None where it cannot be read again (saving then writes a
        new file)."""
        from energy_console.core.spec.profile_write import relative_paths  # ruamel: when read

        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            return None
        return cls(path, text, relative_paths(profile_document(form), path.parent))


def saved_text(form: FormValues, target: Path, opened: ProfileFile | None) -> str:
    """The text of `target` saved from `form`: the opened file with only what changed rewritten,
    or a new file; paths relative to `target`'s folder where they lie in the folder above it."""
    from energy_console.core.spec.profile_write import (
        edited_profile_text,
        profile_text,
        relative_paths,
    )

    document = relative_paths(profile_document(form), target.parent)
    if opened is None:
        return profile_text(document)
    return edited_profile_text(opened.text, opened.document, document)


def save_form(form: FormValues, path: Path, opened: ProfileFile | None) -> ProfileFile | None:
    """Write `form` to `path` (saved_text); the file as saved, for the next save."""
    from energy_console.core.store.session_dir import atomic_write_text

    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, saved_text(form, path, opened))
    return ProfileFile.read(path, form)


@dataclass(frozen=True)
class TechniqueRows:
    """A profile's technique entries as the technique list holds them: catalogue rows with
    their parameters, and entries those rows cannot hold (chains, a technique listed again with
    other parameters) under a key of their own."""

    params: dict[str, dict[str, Any]]  # catalogue technique -> parameters set
    entries: dict[str, Any]  # list key -> profile entry, as loaded
    order: list[str]  # list keys in the order the profile lists them


def technique_rows(techniques: list[Any]) -> TechniqueRows:
    params: dict[str, dict[str, Any]] = {}
    entries: dict[str, Any] = {}
    order = []
    for entry in techniques:
        spec = parse_technique(entry)
        name = spec.steps[0].name
        if not spec.is_chain and name not in params:
            params[name] = dict(spec.steps[0].params)
            key = name
        else:
            key = entry_key(entry)
            entries[key] = entry
        order.append(key)
    return TechniqueRows(params, entries, order)


def entry_key(entry: Any) -> str:
    """A list key for a technique entry the catalogue rows do not hold: its content."""
    return "entry:" + json.dumps(entry, sort_keys=True)


def entry_prompt(entry: Any) -> str:
    return f"chain: {technique_text(entry)}" if is_chain(entry) else technique_text(entry)


def technique_prompt(name: str, technique: Technique, reason: str | None) -> str:
    if reason:  # the reason first: it names the device types too, and columns are narrow
        return f"{name}  ✗ {reason}"
    caveat = "; not for " + ", ".join(a for a, _ in technique.not_for) if technique.not_for \
        else ""
    return f"{name}  ({technique.family}, {'/'.join(technique.devices)}{caveat})"


def params_title(key: str, entry: Any | None) -> str:
    """The title over a technique's parameters; for an entry the catalogue rows do not hold,
    its steps in order instead."""
    if entry is None:
        return f"{key} parameters (⏎ edits)"
    steps = " → ".join(technique_text(step) for step in entry.get("chain", [entry])) \
        if is_chain(entry) else technique_text(entry)
    what = "chain, applied in order" if is_chain(entry) else "as loaded"
    return f"{what}: {steps} (c edits)"


def param_rows(params: tuple[Param, ...], values: dict[str, Any]) -> list[tuple[str, str, str,
                                                                                  str]]:
    """(key, label, text, default) rows of a parameter table: a blank text is the default."""
    return [(p.name, p.name, str(values[p.name]) if p.name in values else "", str(p.default))
            for p in params]


def numbered_key(label: str, taken: set[str] | dict[str, Any]) -> str:
    """`label`, numbered (`label #2`, …) where another row has it already."""
    key, number = label, 2
    while key in taken:
        key, number = f"{label} #{number}", number + 1
    return key


def in_order(chosen: list[str], order: list[str]) -> list[str]:
    """The chosen keys, those the profile listed in its order first, then as they were ticked."""
    return [k for k in order if k in chosen] + [k for k in chosen if k not in order]


def replaced(order: list[Any], old: Any, new: Any) -> list[Any]:
    """`order` with `old` replaced by `new`, listed once where `new` was listed already."""
    out: list[Any] = []
    for known in (new if e == old else e for e in order):
        if known not in out:
            out.append(known)
    return out


def count(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def summary_line(form: FormValues) -> tuple[Profile | None, str]:
    """The profile `form` makes (None where it cannot) and the line under the columns: the run
    count and about how long, or what is wrong."""
    from energy_console.core.session.plan import expand  # read after the first paint
    from energy_console.tui.estimate import estimate_duration_s

    try:
        profile = build_profile(form)
    except ProfileError as exc:
        return None, problem_line(exc)
    specs = expand(profile)
    estimate = duration(estimate_duration_s(specs, profile.protocol.idle_seconds))
    return profile, run_summary(len(specs), estimate, len(profile.models), len(profile.techniques))


def run_summary(runs: int, estimate: str, models: int, techniques: int) -> str:
    """The line under the columns: how many runs the selection makes and about how long."""
    return (f"{count(runs, 'run')} · about {estimate} (rough: half to twice that) · "
            f"{count(models, 'model')} × {count(techniques, 'technique')}")


def problem_line(exc: ProfileError) -> str:
    return f"✗ {exc.key}: {exc.problem}" if exc.key else f"✗ {exc.problem}"


def setup_titles(loaded: str | None, opening: str | None) -> tuple[str, ...]:
    """The setup screen's title, longest first (a narrow terminal shows the first that fits):
    the profile file shown (`loaded`), or being opened."""
    if opening is not None:
        return (f"energy-console · new session · opening {opening}…", f"opening {opening}…")
    if loaded is None:
        return ("energy-console · new session: choose what to measure",
                "new session: choose what to measure")
    return (f"energy-console · new session · profile {loaded}", f"new session · profile {loaded}",
            f"profile {Path(loaded).name}")


def shown_path(path: Path) -> str:
    """A profile's path as the title shows it: relative to the working folder where it is in it."""
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def dataset_dialog_text(entry: Any, task: str) -> tuple[str, str]:
    """The prompt and the hint of the dialog that sets a model's dataset: what its task reads."""
    from energy_console.core.quality.dataset_check import DATASET_FORMATS

    needs = DATASET_FORMATS.get(task, "its format is checked when the run starts (the task is "
                                "not known yet)")
    what = f"{model_label(with_dataset(entry, ''))}{f' ({task})' if task else ''}"
    return (f"Dataset of {what}: a file or folder",
            f"{needs}; relative to {Path.cwd()}. Blank removes it. Enter saves, escape cancels")


def chain_problem(text: str) -> str | None:
    if not text:
        return None
    try:
        technique_from_text(text)
    except ProfileError as exc:
        return exc.problem
    return None


def param_problem(param: Param, text: str) -> str | None:
    """What is wrong with a typed parameter value (blank means the default), or None."""
    if not text:
        return None
    try:
        value = typed_value(param.type, text)
    except ValueError:
        return f"{param.name} must be a {param.type.__name__}, got {text!r}"
    try:
        param.validate(value)
    except ValueError as exc:
        return str(exc)
    return None


def typed_value(kind: type, text: str) -> Any:
    """Typed text as a value of `kind`; a bool is written true or false."""
    if kind is bool:
        if text.lower() not in ("true", "false"):
            raise ValueError(text)
        return text.lower() == "true"
    return kind(text)

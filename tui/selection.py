"""What the setup screen edits, as plain data: turned into a checked Profile and back.

The form holds text as typed; `build_profile` writes the YAML document a user would write and
checks it with core.profile, so the console and `energy-console run` accept the same profiles.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from energy_console.core.models import bare_string_source, source_for, sources
from energy_console.core.plan import RunSpec
from energy_console.core.profile import Profile, ProfileError, parse_profile

SESSION_START_S = 6.0  # the runner's forkserver importing torch + transformers, once a session
WORKER_START_S = 0.5  # forking a worker from that forkserver, measured here
LOAD_AND_QUALITY_S = 1.0  # building a demo model, reference outputs and quality checks
WARMUP_ITERATION_S = 0.05  # a guess: the latency of a small model is unknown before it runs


@dataclass
class FormValues:
    """The setup form as typed. Numbers stay text until build_profile checks them."""

    name: str = "console"
    models: list[Any] = field(default_factory=list)  # profile model entries (str or mapping)
    techniques: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> parameters
    batch_sizes: str = "1"
    sequence_lengths: str = "128"
    resolutions: str = "224"
    device: str = "auto"
    protocol: dict[str, str] = field(default_factory=dict)  # ProtocolSettings field -> text
    # What the form does not edit, kept as loaded so saving a profile loses nothing:
    # {"protocol": {max_spread: ...}, "carbon": {...}, "sensors": {...}}
    kept: dict[str, Any] = field(default_factory=dict)


PROTOCOL_FIELDS = (
    ("idle_seconds", "Idle baseline (s)", float),
    ("warmup", "Warm-up iterations", int),
    ("min_window_s", "Min window (s)", float),
    ("repeats", "Repeats", int),
    ("iterations", "Iterations (or auto)", int),
    ("sample_hz", "Sensor rate (Hz)", float),
    ("cooldown_s", "Cool-down between runs (s)", float),
    ("threads", "CPU threads (or auto)", int),
)


def _number_list(text: str, label: str) -> list[int]:
    items = [p for p in text.replace(",", " ").split() if p]
    if not items:
        raise ProfileError(label, "empty; write one or more whole numbers, e.g. 1, 8")
    try:
        return [int(p) for p in items]
    except ValueError:
        raise ProfileError(
            label, f"{text!r} is not a list of whole numbers; write e.g. 1, 8"
        ) from None


def _number(text: str, label: str, kind: type) -> float | int:
    try:
        return kind(text)
    except ValueError:
        what = "a whole number" if kind is int else "a number"
        raise ProfileError(label, f"{text!r} is not {what}") from None


def profile_document(form: FormValues) -> dict[str, Any]:
    """The form as a profile document (what profiles/<name>.yaml holds)."""
    if not form.models:
        raise ProfileError("models", "none selected; tick a demo model or add a hub id or folder")
    if not form.techniques:
        raise ProfileError("techniques", "none selected; tick at least baseline")
    protocol: dict[str, Any] = dict(form.kept.get("protocol", {}))
    for key, label, kind in PROTOCOL_FIELDS:
        text = form.protocol.get(key, "").strip()
        if text:
            protocol[key] = _number(text, label, kind)
    return {
        "name": form.name.strip(),
        "device": form.device,
        "models": list(form.models),
        "techniques": [{n: dict(p)} if p else n for n, p in form.techniques.items()],
        "inputs": {
            "batch_sizes": _number_list(form.batch_sizes, "batch sizes"),
            "sequence_lengths": _number_list(form.sequence_lengths, "sequence lengths"),
            "resolutions": _number_list(form.resolutions, "resolutions"),
        },
        "protocol": protocol,
        **{section: form.kept[section] for section in ("carbon", "sensors")
           if section in form.kept},
    }


def build_profile(form: FormValues, source: str = "setup") -> Profile:
    """The checked Profile; ProfileError names the field and what to write instead."""
    text = yaml.safe_dump(profile_document(form), sort_keys=False)
    return parse_profile(text, source=source, base_dir=str(Path.cwd()))


def form_from_profile(profile: Profile) -> FormValues:
    document = profile.to_dict()
    edited = {key for key, _, _ in PROTOCOL_FIELDS}
    kept: dict[str, Any] = {section: document[section] for section in ("carbon", "sensors")
                            if section in document}
    kept["protocol"] = {k: v for k, v in document["protocol"].items() if k not in edited}
    return FormValues(
        name=profile.name,
        models=[_absolute_model(m) for m in profile.models],
        techniques={_step_name(t): _step_params(t) for t in document["techniques"]},
        batch_sizes=", ".join(map(str, profile.inputs.batch_sizes)),
        sequence_lengths=", ".join(map(str, profile.inputs.sequence_lengths)),
        resolutions=", ".join(map(str, profile.inputs.resolutions)),
        device=profile.device,
        protocol={k: _text(v) for k, v in document["protocol"].items() if k in edited},
        kept=kept,
    )


def _absolute_model(entry) -> Any:
    """Local folders and dataset files as absolute paths, so the profile works from any
    directory (the console builds profiles from its own working directory)."""
    raw = entry.to_yaml()
    if entry.source == "path":
        raw = dict(raw, path=entry.resolved_ref)
    if entry.dataset:
        base = Path(entry.base_dir)
        dataset = dict(entry.dataset, path=str((base / entry.dataset["path"]).resolve()))
        if isinstance(dataset.get("label_map"), str):
            dataset["label_map"] = str((base / dataset["label_map"]).resolve())
        raw = dict(raw, dataset=dataset)
    return raw


def _step_name(raw: Any) -> str:
    return raw if isinstance(raw, str) else next(iter(raw))


def _step_params(raw: Any) -> dict[str, Any]:
    return {} if isinstance(raw, str) else dict(next(iter(raw.values())) or {})


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def model_entry(text: str, task: str | None = None) -> Any:
    """A typed model: an existing folder becomes {path: ...}, anything else a hub id."""
    text = text.strip()
    if not text:
        raise ProfileError("model", "empty; type a hub id (org/name) or a local folder")
    folder = Path(text).expanduser()
    if folder.is_dir():
        entry: dict[str, Any] = {"path": str(folder.resolve())}
    elif text.startswith(("/", "./", "../", "~")):
        raise ProfileError("model", f"no folder at {text}; check the path")
    else:
        entry = {"hf": text}
    if task:
        entry["task"] = task
    return entry


def known_task(entry: Any) -> str:
    """The task of a bare model string where its source knows it before loading, else ""."""
    if not isinstance(entry, str):
        return ""
    return source_for(bare_string_source(entry)).known_task(entry) or ""


def model_label(entry: Any) -> str:
    if isinstance(entry, str):
        return entry
    for key in sources():
        if key in entry:
            task = f" ({entry['task']})" if entry.get("task") else ""
            dataset = entry.get("dataset")
            data = f" · data: {Path(dataset['path']).name}" if dataset else ""
            return f"{entry[key]}{task}{data}"
    return str(entry)


def models_in_profiles(folder: Path) -> list[Any]:
    """Models other than demo ones named in saved profiles, for the picker (unreadable files
    skipped)."""
    seen: list[Any] = []
    for file in sorted(folder.glob("*.yaml")) if folder.is_dir() else []:
        try:
            document = yaml.safe_load(file.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError):
            continue
        models = document.get("models") if isinstance(document, dict) else None
        for entry in models if isinstance(models, list) else []:
            if isinstance(entry, str):
                entry = {bare_string_source(entry): entry}
            # the picker lists the demo models already
            listed = isinstance(entry, dict) and any(k in entry for k in sources() if k != "demo")
            if listed and entry not in seen:
                seen.append(entry)
    return seen


def estimate_duration_s(specs: list[RunSpec], idle_seconds: float) -> float:
    """A rough session length: worker start, loading, warm-up and the timed windows per run."""
    total = SESSION_START_S + idle_seconds
    for spec in specs:
        p = spec.protocol
        window_s = p.min_window_s if p.iterations is None else p.iterations * WARMUP_ITERATION_S
        total += (WORKER_START_S + LOAD_AND_QUALITY_S + p.warmup * WARMUP_ITERATION_S
                  + p.repeats * window_s * 1.2)
    return total

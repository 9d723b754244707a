"""What the setup screen edits, as plain data: turned into a checked Profile and back.

The form holds text as typed; `build_profile` writes the YAML document a user would write and
checks it with core.profile, so the console and `energy-console run` accept the same profiles.
YAML and the profile checks are imported when first used, after the setup screen's first paint.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from energy_console.core.compression import Technique, parse_technique
from energy_console.core.compression.catalogue import NVIDIA_DRIVER_FILE
from energy_console.core.models import bare_string_source, source_for, sources
from energy_console.core.spec.profile import FILE_SOURCES, Profile, ProfileError

if TYPE_CHECKING:
    from energy_console.core.measure.devices import Device


@dataclass
class FormValues:
    """The setup form as typed. Numbers stay text until build_profile checks them."""

    name: str = "console"
    models: list[Any] = field(default_factory=list)  # profile model entries (str or mapping)
    # profile technique entries, in order: a name, {name: parameters} or {chain: [...]}
    techniques: list[Any] = field(default_factory=list)
    batch_sizes: str = "1"
    sequence_lengths: str = "128"
    resolutions: str = "224"
    device: str = "auto"
    protocol: dict[str, str] = field(default_factory=dict)  # ProtocolSettings field -> text
    # What the form does not edit, kept as loaded so saving a profile loses nothing: every
    # top-level section but FORM_SECTIONS ({"carbon": {...}, "save_models": true, ...}), the
    # protocol fields without a form field ({"protocol": {max_spread: ...}}), "max_new_tokens"
    kept: dict[str, Any] = field(default_factory=dict)


FORM_SECTIONS = ("name", "device", "models", "techniques", "inputs", "protocol")


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
        "techniques": list(form.techniques),
        "inputs": {
            "batch_sizes": _number_list(form.batch_sizes, "batch sizes"),
            "sequence_lengths": _number_list(form.sequence_lengths, "sequence lengths"),
            "resolutions": _number_list(form.resolutions, "resolutions"),
            # generate runs' input size: kept as the profile had it (no field in the form yet)
            **({"max_new_tokens": form.kept["max_new_tokens"]}
               if "max_new_tokens" in form.kept else {}),
        },
        "protocol": protocol,
        **{key: value for key, value in form.kept.items()
           if key not in ("protocol", "max_new_tokens")},
    }


def load_profile(path: Path) -> Profile:
    """A profile file read and checked as `energy-console run` reads it (core.session.profile_check,
    imported with YAML on the first read)."""
    from energy_console.core.session.profile_check import load_profile as read_checked

    return read_checked(path)


def build_profile(form: FormValues, source: str = "setup") -> Profile:
    """The checked Profile; ProfileError names the field and what to write instead."""
    import yaml
    from energy_console.core.session.profile_check import parse_profile

    text = yaml.safe_dump(profile_document(form), sort_keys=False)
    return parse_profile(text, source=source, base_dir=str(Path.cwd()))


def form_from_profile(profile: Profile) -> FormValues:
    document = profile.to_dict()
    edited = {key for key, _, _ in PROTOCOL_FIELDS}
    kept: dict[str, Any] = {section: value for section, value in document.items()
                            if section not in FORM_SECTIONS}
    kept["protocol"] = {k: v for k, v in document["protocol"].items() if k not in edited}
    if "max_new_tokens" in document["inputs"]:
        kept["max_new_tokens"] = document["inputs"]["max_new_tokens"]
    return FormValues(
        name=profile.name,
        models=[_absolute_model(m) for m in profile.models],
        techniques=list(document["techniques"]),
        batch_sizes=", ".join(map(str, profile.inputs.batch_sizes)),
        sequence_lengths=", ".join(map(str, profile.inputs.sequence_lengths)),
        resolutions=", ".join(map(str, profile.inputs.resolutions)),
        device=profile.device,
        protocol={k: _text(v) for k, v in document["protocol"].items() if k in edited},
        kept=kept,
    )


def _absolute_model(entry) -> Any:
    """Local folders, dataset files and a factory's module folder as absolute paths, so the
    profile works from any directory (the console builds profiles from its own working
    directory, and a session runs the copy in its own folder)."""
    raw = entry.to_yaml()
    if entry.source in FILE_SOURCES:
        raw = dict(raw, **{entry.source: entry.resolved_ref})
    if entry.source == "factory" and isinstance(raw, dict):
        from energy_console.core.models.factory import module_folder

        folder = module_folder(entry)
        if folder is not None:
            raw = dict(raw, folder=folder)
    for key in ("weights", "checkpoint"):  # a factory's, timm's or torchvision's weights file
        value = (entry.options or {}).get(key)
        if isinstance(value, str) and Path(entry.resolve(value)).is_file():
            raw = dict(raw, **{key: entry.resolve(value)})
    if entry.dataset:
        base = Path(entry.base_dir)
        dataset = dict(entry.dataset)
        for key in ("path", "label_map"):  # a label map may also be given inline, as a mapping
            if isinstance(dataset.get(key), str):
                dataset[key] = str((base / Path(dataset[key]).expanduser()).resolve())
        raw = dict(raw, dataset=dataset)
    return raw


def technique_entry(name: str, params: dict[str, Any]) -> Any:
    """A catalogue technique with the parameters set in the form, as a profile entry."""
    return {name: dict(params)} if params else name


def technique_text(entry: Any) -> str:
    """A technique entry as one line a user can read and type back (see technique_from_text):
    `structured-prune ratio=0.3 + dynamic-int8`; a chain's steps joined by +."""
    spec = parse_technique(entry)
    return " + ".join(
        " ".join([step.name, *(f"{k}={_text(v)}" for k, v in step.params.items())])
        for step in spec.steps)


def unavailable_reason(technique: Technique, device: str) -> str | None:
    """Why `technique` cannot run on `device` here (missing packages, a device type it does not
    run on), or None. `auto` counts as any device type this machine may offer."""
    reason = technique.unavailable_reason()
    if reason:
        return reason
    kind = device.split(":")[0]
    if kind in ("cpu", "cuda") and kind not in technique.devices:
        return f"runs on {'/'.join(technique.devices)} only, not on {kind}"
    if kind == "auto" and "cpu" not in technique.devices and not Path(
            NVIDIA_DRIVER_FILE).exists():
        return f"runs on {'/'.join(technique.devices)} only; this machine has no NVIDIA driver"
    return None


def device_choices(devices: list[Device], current: str) -> list[tuple[str, str]]:
    """(device, what it is) for the device picker: this machine's devices, and the current one
    where it names none of them (a profile written for another machine keeps its device)."""
    choices = [(d.name, d.description) for d in devices]
    if current and current not in {name for name, _ in choices}:
        gpus = [name for name, _ in choices if name.startswith("cuda:")]
        what = ("cuda:0" if current == "cuda" and gpus else
                "as the profile says; not found on this machine")
        choices.append((current, what))
    return choices


def is_chain(entry: Any) -> bool:
    return isinstance(entry, dict) and set(entry) == {"chain"}


def technique_from_text(text: str) -> Any:
    """A typed technique line as a profile entry: one step is a technique, several a chain.

    ProfileError says what is wrong (an unknown technique or parameter, a bad value).
    """
    import yaml

    example = "write e.g. structured-prune ratio=0.3 + dynamic-int8"
    steps = []
    for part in text.split("+"):
        name, *assignments = part.split() or [""]
        if not name:
            raise ProfileError("technique", f"an empty step; {example}")
        params: dict[str, Any] = {}
        for assignment in assignments:
            key, equals, value = assignment.partition("=")
            if not (key and equals and value):
                raise ProfileError("technique", f"{assignment!r}: write parameters as "
                                   f"name=value; {example}")
            try:
                params[key] = yaml.safe_load(value)
            except yaml.YAMLError:
                params[key] = value
        steps.append(technique_entry(name, params))
    entry = {"chain": steps} if len(steps) > 1 else steps[0]
    try:
        parse_technique(entry)
    except (KeyError, ValueError) as exc:
        raise ProfileError("technique", exc.args[0] if exc.args else str(exc)) from None
    return entry


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def model_entry(text: str, task: str | None = None, source: str | None = None) -> Any:
    """A typed model of `source`; without one, an existing folder becomes {path: ...} and
    anything else a hub id. Files (a folder, an ONNX file) become absolute paths."""
    text = text.strip()
    if not text:
        raise ProfileError("model", "empty; type a hub id (org/name) or a local folder")
    found = Path(text).expanduser()
    if source in FILE_SOURCES:
        if not (found.is_dir() if source == "path" else found.is_file()):
            raise ProfileError("model", f"no {'folder' if source == 'path' else 'file'} at "
                               f"{text}; check the path")
        entry: dict[str, Any] = {source: str(found.resolve())}
    elif source:
        problem = source_for(source).check_ref(text)
        if problem:
            raise ProfileError("model", problem)
        entry = {source: text}
    elif found.is_dir():
        entry = {"path": str(found.resolve())}
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
            if isinstance(dataset, dict):
                dataset = dataset.get("path")
            data = f" · data: {Path(str(dataset)).name}" if dataset else ""
            return f"{entry[key]}{task}{data}"
    return str(entry)


def model_prompt(entry: Any) -> str:
    """What the model list shows of an entry: its reference and task, then what it runs (the
    workload) and on what (its dataset's file name), those cut first where the column is narrow."""
    if isinstance(entry, str):
        return f"{entry}  {known_task(entry)}".rstrip()
    label = model_label({k: v for k, v in entry.items() if k != "dataset"})
    data = model_dataset_path(entry)
    return " · ".join([label, str(entry.get("workload", "infer")),
                       *([f"data: {Path(data).name}"] if data else [])])


def model_task(entry: Any) -> str:
    """The task of a model entry where it is known before loading (given, or a demo model's),
    else ""."""
    if isinstance(entry, dict):
        ref = next((entry[key] for key in sources() if key in entry), None)
        return entry.get("task") or (known_task(ref) if isinstance(ref, str) and
                                     "demo" in entry else "")
    return known_task(entry)


def model_dataset_path(entry: Any) -> str:
    """The path of a model entry's dataset, as the profile holds it, or ""."""
    dataset = entry.get("dataset") if isinstance(entry, dict) else None
    if isinstance(dataset, dict):
        dataset = dataset.get("path")
    return str(dataset) if dataset else ""


def with_dataset(entry: Any, path: str) -> Any:
    """The model entry with its dataset path set (made absolute, so the profile works from any
    folder; max_samples and label_map kept) or, with a blank `path`, removed."""
    if isinstance(entry, str):
        if not path:
            return entry
        entry = {bare_string_source(entry): entry}
    out = dict(entry)
    dataset = out.pop("dataset", None)
    if path:
        kept = dataset if isinstance(dataset, dict) else {}
        out["dataset"] = {**kept, "path": str(Path(path).expanduser().resolve())}
    elif set(out) == {"demo"}:  # a demo model with nothing else is written as its bare name
        return out["demo"]
    return out


def dataset_problem(text: str, task: str, entry: Any = None) -> str | None:
    """What is wrong with `text` as the dataset of the model `entry` with `task`, checked as
    pre-flight checks it (core.quality.dataset_check), or None; blank removes it."""
    from energy_console.core.quality.dataset_check import dataset_shape_problem, scored_by_pass_at_1

    if not text.strip():
        return None
    fields = entry if isinstance(entry, dict) else {}
    kept = fields.get("dataset")
    raw = {**(kept if isinstance(kept, dict) else {}), "path": text.strip()}
    return dataset_shape_problem(raw, Path.cwd(), task, scored_by_pass_at_1(
        fields.get("workload"), fields.get("generation")))


@dataclass(frozen=True)
class SavedProfiles:
    """What a folder of profiles holds, read the way `energy-console run` reads them."""

    paths: tuple[Path, ...]  # every *.yaml, sorted
    problems: dict[Path, str]  # why a file cannot be opened, for those that cannot
    models: tuple[Any, ...]  # models other than demo ones they name, as form entries


def read_saved_profiles(folder: Path) -> SavedProfiles:
    """Every profile in `folder` loaded with core.profile; one that does not load is listed with
    its error rather than stopping the others (or the console)."""
    paths = tuple(sorted(folder.glob("*.yaml"))) if folder.is_dir() else ()
    problems: dict[Path, str] = {}
    models: list[Any] = []
    for path in paths:
        try:
            profile = load_profile(path)
        except ProfileError as exc:
            problems[path] = str(exc)
            continue
        except (OSError, UnicodeDecodeError) as exc:
            problems[path] = f"{path}: cannot be read: {exc}"
            continue
        for model in profile.models:
            entry = _absolute_model(model)
            # the picker lists the demo models already
            if model.source != "demo" and entry not in models:
                models.append(entry)
    return SavedProfiles(paths, problems, tuple(models))

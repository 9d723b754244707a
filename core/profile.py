"""Profiles: what a session measures, as YAML.

Loaded with yaml.safe_load and checked key by key; a ProfileError names the key, the bad value, what
is allowed and the line. `to_yaml` writes back the same document a user would write.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from energy_console.core.models.base import TASKS

DEVICE_PATTERN = re.compile(r"^(auto|cpu|cuda|cuda:\d+)$")
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


class ProfileError(ValueError):
    """A profile that cannot run; str() names where, what, and what is allowed."""

    def __init__(self, key: str, problem: str, line: int | None = None, source: str | None = None):
        self.key, self.problem, self.line, self.source = key, problem, line, source
        where = source or "profile"
        if line is not None:
            where += f", line {line}"
        super().__init__(f"{where}: {key}: {problem}" if key else f"{where}: {problem}")


@dataclass(frozen=True)
class ModelEntry:
    ref: str  # demo name, hub id, or folder path as written
    source: str  # the key of its core.models source: demo | hf | path
    task: str | None = None
    dataset: dict[str, Any] | None = None  # checked by core.quality when the run starts
    trust_remote_code: bool = False
    base_dir: str = "."  # folder the profile was read from; relative paths start there

    @property
    def short_name(self) -> str:
        """The last path component, for run ids and tables."""
        return Path(self.ref.rstrip("/")).name or self.ref

    @property
    def resolved_ref(self) -> str:
        if self.source == "path":
            return str((Path(self.base_dir) / Path(self.ref).expanduser()).resolve())
        return self.ref

    def to_yaml(self) -> Any:
        if self.source == "demo" and not (self.task or self.dataset):
            return self.ref
        out: dict[str, Any] = {"hf" if self.source == "hf" else self.source: self.ref}
        if self.task:
            out["task"] = self.task
        if self.dataset:
            out["dataset"] = self.dataset
        if self.trust_remote_code:
            out["trust_remote_code"] = True
        return out


@dataclass(frozen=True)
class InputSizes:
    batch_sizes: tuple[int, ...] = (1,)
    sequence_lengths: tuple[int, ...] = (128,)
    resolutions: tuple[int, ...] = (224,)


@dataclass(frozen=True)
class ProtocolSettings:
    idle_seconds: float = 2.0
    warmup: int = 5
    min_window_s: float = 1.0  # iterations per repeat grow until a timed window lasts this long
    repeats: int = 3
    sample_hz: float = 20.0
    iterations: int | None = None  # fixed iterations per repeat (then windows are not lengthened)
    max_spread: float = 0.15  # warn when repeats' energy differs by more than this (relative)
    run_timeout_s: float = 900.0
    cooldown_s: float = 0.0  # pause between runs, so heat from one run does not throttle the next
    threads: int | None = None  # torch CPU threads in the worker (None: torch's default)


@dataclass(frozen=True)
class CarbonSettings:
    intensity_g_per_kwh: float | None = None
    country: str | None = None  # ISO 3166 alpha-2, looked up in core/carbon_intensity.csv


@dataclass(frozen=True)
class SensorSettings:
    cpu_tdp_w: float | None = None  # for the estimated CPU sensor


@dataclass(frozen=True)
class Profile:
    name: str
    models: tuple[ModelEntry, ...]
    techniques: tuple[Any, ...]  # core.compression.TechniqueSpec
    device: str = "auto"
    inputs: InputSizes = field(default_factory=InputSizes)
    protocol: ProtocolSettings = field(default_factory=ProtocolSettings)
    carbon: CarbonSettings = field(default_factory=CarbonSettings)
    sensors: SensorSettings = field(default_factory=SensorSettings)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "device": self.device,
            "models": [m.to_yaml() for m in self.models],
            "techniques": [t.to_yaml() for t in self.techniques],
            "inputs": {
                "batch_sizes": list(self.inputs.batch_sizes),
                "sequence_lengths": list(self.inputs.sequence_lengths),
                "resolutions": list(self.inputs.resolutions),
            },
            "protocol": _set_fields(self.protocol),
        }
        carbon = _set_fields(self.carbon)
        if carbon:
            out["carbon"] = carbon
        sensors = _set_fields(self.sensors)
        if sensors:
            out["sensors"] = sensors
        return out

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False, default_flow_style=None)


def _set_fields(obj: Any) -> dict[str, Any]:
    return {k: v for k, v in dataclasses.asdict(obj).items() if v is not None}


# --------------------------------------------------------------------------------------- loading


def load_profile(path: str | Path) -> Profile:
    path = Path(path)
    if not path.is_file():
        raise ProfileError("", f"no profile file at {path}; list them with `ls profiles/`")
    text = path.read_text(encoding="utf-8")
    return parse_profile(text, source=str(path), base_dir=str(path.parent.resolve()))


def save_profile(profile: Profile, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(profile.to_yaml(), encoding="utf-8")
    tmp.replace(path)
    return path


def parse_profile(text: str, source: str = "profile", base_dir: str = ".") -> Profile:
    try:
        data = yaml.safe_load(text)
        lines = _line_index(yaml.compose(text))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark else None
        problem = f"not valid YAML: {getattr(exc, 'problem', exc)}"
        raise ProfileError("", problem, line, source) from None
    return _Checker(lines, source, base_dir).profile(data)


def _line_index(node, path=(), out=None) -> dict[tuple, int]:
    """1-based line of every key and list item, by its path of keys and indexes."""
    out = {} if out is None else out
    if node is None:
        return out
    out.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = key_node.value
            out[path + (key,)] = key_node.start_mark.line + 1
            _line_index(value_node, path + (key,), out)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _line_index(item, path + (i,), out)
    return out


class _Checker:
    def __init__(self, lines: dict[tuple, int], source: str, base_dir: str):
        self.lines, self.source, self.base_dir = lines, source, base_dir

    def fail(self, path: tuple, problem: str) -> ProfileError:
        key = ".".join(str(p) if isinstance(p, str) else f"[{p}]" for p in path).replace(".[", "[")
        line = None
        for n in range(len(path), -1, -1):
            if path[:n] in self.lines:
                line = self.lines[path[:n]]
                break
        return ProfileError(key, problem, line, self.source)

    def mapping(self, value: Any, path: tuple, allowed: tuple[str, ...]) -> dict:
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise self.fail(path, f"must be a mapping with keys {', '.join(allowed)}")
        for key in value:
            if key not in allowed:
                raise self.fail(
                    path + (key,), f"unknown key {key!r}; allowed here: {', '.join(allowed)}"
                )
        return value

    def number(self, value, path, kind=float, minimum=None, maximum=None, strict=False):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        if kind is int:
            ok = isinstance(value, int) and not isinstance(value, bool)
        if ok and minimum is not None:
            ok = value > minimum if strict else value >= minimum
        if ok and maximum is not None:
            ok = value <= maximum
        if not ok:
            bound = ""
            if minimum is not None:
                bound = f" {'>' if strict else '>='} {minimum}"
            if maximum is not None:
                bound += f" and <= {maximum}"
            what = "an integer" if kind is int else "a number"
            raise self.fail(path, f"{value!r} is not allowed; expected {what}{bound}")
        return kind(value)

    def int_list(self, value, path, default):
        if value is None:
            return default
        if isinstance(value, int) and not isinstance(value, bool):
            value = [value]
        if not isinstance(value, list) or not value:
            raise self.fail(path, f"{value!r} is not allowed; expected a list of positive integers")
        return tuple(self.number(v, path + (i,), int, 1) for i, v in enumerate(value))

    def profile(self, data: Any) -> Profile:
        allowed = ("name", "device", "models", "techniques", "inputs", "protocol", "carbon",
                   "sensors")
        data = self.mapping(data, (), allowed)
        name = data.get("name")
        if not isinstance(name, str) or not NAME_PATTERN.match(name):
            raise self.fail(
                ("name",), f"{name!r} is not allowed; expected a name of letters, digits, . _ -"
            )
        device = str(data.get("device", "auto"))
        if not DEVICE_PATTERN.match(device):
            raise self.fail(("device",), f"{device!r} is not allowed; expected auto, cpu, cuda or "
                            "cuda:N")
        return Profile(
            name=name,
            device=device,
            models=self.models(data.get("models")),
            techniques=self.techniques(data.get("techniques", ["baseline"])),
            inputs=self.inputs(data.get("inputs")),
            protocol=self.protocol(data.get("protocol")),
            carbon=self.carbon(data.get("carbon")),
            sensors=self.sensors(data.get("sensors")),
        )

    def models(self, value) -> tuple[ModelEntry, ...]:
        from energy_console.core.models import bare_string_source, sources

        known = sources()
        keys = [f"{key}:" for key in known]

        if not isinstance(value, list) or not value:
            raise self.fail(("models",), "expected a non-empty list of models (demo names, "
                            "{hf: ID, task: ...} or {path: FOLDER, task: ...})")
        entries = []
        for i, raw in enumerate(value):
            path = ("models", i)
            if isinstance(raw, str):
                raw = {bare_string_source(raw): raw}
            fields = self.mapping(raw, path, (*known, "task", "dataset", "trust_remote_code"))
            named = [key for key in known if key in fields]
            if len(named) != 1:
                raise self.fail(path, "each model needs exactly one of "
                                f"{', '.join(keys[:-1])} or {keys[-1]}")
            source = named[0]
            ref = fields[source]
            if not isinstance(ref, str) or not ref.strip():
                raise self.fail(path + (source,), f"{ref!r} is not allowed; expected a string")
            problem = known[source].check_ref(ref)
            if problem:
                raise self.fail(path, problem)
            task = fields.get("task")
            if task is not None and task not in TASKS:
                raise self.fail(path + ("task",),
                                f"{task!r} is not allowed; expected one of {', '.join(TASKS)}")
            dataset = fields.get("dataset")
            if isinstance(dataset, str):
                dataset = {"path": dataset}
            if dataset is not None and (not isinstance(dataset, dict) or "path" not in dataset):
                raise self.fail(path + ("dataset",), "expected a file or folder path, or a "
                                "mapping with path: (and max_samples:)")
            trust = fields.get("trust_remote_code", False)
            if not isinstance(trust, bool):
                raise self.fail(path + ("trust_remote_code",), f"{trust!r}: expected true/false")
            entries.append(ModelEntry(ref=ref, source=source, task=task, dataset=dataset,
                                      trust_remote_code=trust, base_dir=self.base_dir))
        return tuple(entries)

    def techniques(self, value) -> tuple:
        from energy_console.core.compression import parse_technique

        if not isinstance(value, list) or not value:
            raise self.fail(("techniques",), "expected a non-empty list, e.g. [baseline, "
                            "dynamic-int8]")
        specs = []
        for i, raw in enumerate(value):
            try:
                specs.append(parse_technique(raw))
            except (KeyError, ValueError) as exc:
                message = exc.args[0] if exc.args else str(exc)
                raise self.fail(("techniques", i), f"{message} (see `energy-console list "
                                "techniques`)") from None
        slugs = [s.slug for s in specs]
        for i, slug in enumerate(slugs):
            if slug in slugs[:i]:
                raise self.fail(("techniques", i), f"{slug} is listed twice")
        return tuple(specs)

    def inputs(self, value) -> InputSizes:
        fields = self.mapping(value, ("inputs",), ("batch_sizes", "sequence_lengths",
                                                   "resolutions"))
        d = InputSizes()
        return InputSizes(
            batch_sizes=self.int_list(fields.get("batch_sizes"), ("inputs", "batch_sizes"),
                                      d.batch_sizes),
            sequence_lengths=self.int_list(fields.get("sequence_lengths"),
                                           ("inputs", "sequence_lengths"), d.sequence_lengths),
            resolutions=self.int_list(fields.get("resolutions"), ("inputs", "resolutions"),
                                      d.resolutions),
        )

    def protocol(self, value) -> ProtocolSettings:
        names = tuple(ProtocolSettings.__dataclass_fields__)
        fields = self.mapping(value, ("protocol",), names)
        d = ProtocolSettings()
        p = ("protocol",)
        iterations = fields.get("iterations")
        return ProtocolSettings(
            idle_seconds=self.number(fields.get("idle_seconds", d.idle_seconds),
                                     p + ("idle_seconds",), float, 0),
            warmup=self.number(fields.get("warmup", d.warmup), p + ("warmup",), int, 0),
            min_window_s=self.number(fields.get("min_window_s", d.min_window_s),
                                     p + ("min_window_s",), float, 0, strict=True),
            repeats=self.number(fields.get("repeats", d.repeats), p + ("repeats",), int, 1),
            sample_hz=self.number(fields.get("sample_hz", d.sample_hz), p + ("sample_hz",),
                                  float, 0, 1000, strict=True),
            iterations=None if iterations is None else self.number(
                iterations, p + ("iterations",), int, 1),
            max_spread=self.number(fields.get("max_spread", d.max_spread), p + ("max_spread",),
                                   float, 0, strict=True),
            run_timeout_s=self.number(fields.get("run_timeout_s", d.run_timeout_s),
                                      p + ("run_timeout_s",), float, 0, strict=True),
            cooldown_s=self.number(fields.get("cooldown_s", d.cooldown_s), p + ("cooldown_s",),
                                   float, 0),
            threads=None if fields.get("threads") is None else self.number(
                fields["threads"], p + ("threads",), int, 1),
        )

    def carbon(self, value) -> CarbonSettings:
        fields = self.mapping(value, ("carbon",), ("intensity_g_per_kwh", "country"))
        intensity = fields.get("intensity_g_per_kwh")
        if intensity is not None:
            intensity = self.number(intensity, ("carbon", "intensity_g_per_kwh"), float, 0)
        country = fields.get("country")
        if country is not None:
            from energy_console.core.carbon import intensity_table

            table = intensity_table()
            if not isinstance(country, str) or country.upper() not in table:
                raise self.fail(("carbon", "country"), f"{country!r} is not in the shipped table "
                                f"({', '.join(sorted(table))}); set intensity_g_per_kwh instead")
            country = country.upper()
        return CarbonSettings(intensity_g_per_kwh=intensity, country=country)

    def sensors(self, value) -> SensorSettings:
        fields = self.mapping(value, ("sensors",), ("cpu_tdp_w",))
        tdp = fields.get("cpu_tdp_w")
        if tdp is not None:
            tdp = self.number(tdp, ("sensors", "cpu_tdp_w"), float, 0, strict=True)
        return SensorSettings(cpu_tdp_w=tdp)

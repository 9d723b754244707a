"""Profiles: what a session measures, as YAML.

A profile is untrusted text: core.profile_yaml reads it (no aliases, no duplicate keys, no control
characters, bounded size), then it is checked key by key, every number against its range in
core.limits. A ProfileError names the file, line, key, the bad value, what is allowed and the fix.
`to_yaml` writes back the same document a user would write.
"""

from __future__ import annotations

import dataclasses
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from energy_console.core.models.base import TASKS
from energy_console.core.spec import profile_yaml
from energy_console.core.spec.limits import limit, show_value

DEVICE_PATTERN = re.compile(r"auto|cpu|cuda|cuda:\d{1,3}")  # fullmatch: no trailing newline
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")  # fullmatch; it names folders
MAX_PROFILE_BYTES = profile_yaml.MAX_PROFILE_CHARS


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
    workload: str = "infer"  # infer | generate (core.workloads)
    generation: dict[str, Any] | None = None  # decoding settings of generate runs, as written
    training: dict[str, Any] | None = None  # optimizer and data of training (core.workloads)

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
        if self.source == "demo" and not (self.task or self.dataset or self.trust_remote_code
                                          or self.workload != "infer" or self.generation
                                          or self.training):
            return self.ref
        out: dict[str, Any] = {"hf" if self.source == "hf" else self.source: self.ref}
        if self.task:
            out["task"] = self.task
        if self.dataset:
            out["dataset"] = self.dataset
        if self.trust_remote_code:
            out["trust_remote_code"] = True
        if self.workload != "infer":
            out["workload"] = self.workload
        if self.generation:
            out["generation"] = self.generation
        if self.training:
            out["training"] = self.training
        return out


@dataclass(frozen=True)
class InputSizes:
    batch_sizes: tuple[int, ...] = (1,)
    sequence_lengths: tuple[int, ...] = (128,)
    resolutions: tuple[int, ...] = (224,)
    max_new_tokens: tuple[int, ...] = (32,)  # generate runs only


# off, the session's cache/, or the user's cache dir (core.variant_cache)
VARIANT_CACHE_PLACES = ("off", "session", "user")


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
    idle_refresh_s: float = 600.0  # idle baseline taken again after this long (core.pacing)
    variant_cache: str = "off"  # compressed variants kept on disk: off | session | user
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
    save_models: bool = False  # keep each run's compressed / fine-tuned model in its run folder
    mlflow: bool = False  # log each run to MLflow (core.tracking); `run --mlflow` does the same
    # runs spread over several GPUs (--gpus, --ray): one at a time when CPU energy matters
    exclusive: bool = False
    gpu_model: str | None = None  # runs only on GPUs whose name contains this (e.g. "H100")

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
        if (any(m.workload == "generate" for m in self.models)
                or self.inputs.max_new_tokens != InputSizes().max_new_tokens):
            out["inputs"]["max_new_tokens"] = list(self.inputs.max_new_tokens)
        carbon = _set_fields(self.carbon)
        if carbon:
            out["carbon"] = carbon
        sensors = _set_fields(self.sensors)
        if sensors:
            out["sensors"] = sensors
        for flag in ("save_models", "mlflow"):
            if getattr(self, flag):
                out[flag] = True
        if self.exclusive:
            out["exclusive"] = True
        if self.gpu_model:
            out["gpu_model"] = self.gpu_model
        return out

    def to_yaml(self) -> str:
        return yaml.dump(self.to_dict(), Dumper=_NoAliasDumper, sort_keys=False,
                         default_flow_style=None)


class _NoAliasDumper(yaml.SafeDumper):
    """Writes a value shared by two entries out twice: the loader refuses anchors and aliases."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _set_fields(obj: Any) -> dict[str, Any]:
    return {k: v for k, v in dataclasses.asdict(obj).items() if v is not None}


# --------------------------------------------------------------------------------------- loading


def load_profile(path: str | Path) -> Profile:
    path = Path(path)
    source = str(path)
    try:
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):
            raise ProfileError("", "not a regular file; name a profile's .yaml file (list them "
                               "with `ls profiles/`)", source=source)
        with path.open("rb") as file:
            data = file.read(MAX_PROFILE_BYTES + 1)
        if len(data) > MAX_PROFILE_BYTES:
            raise ProfileError("", f"the file is longer than {MAX_PROFILE_BYTES} bytes, too long "
                               "for a profile; split it, or remove what it does not need",
                               source=source)
    except FileNotFoundError:
        raise ProfileError("", f"no profile file at {path}; list them with `ls profiles/`"
                           ) from None
    except OSError as exc:
        raise ProfileError("", f"cannot read {path}: {exc.strerror or exc}; check the path and "
                           "its permissions") from None
    try:
        text = profile_yaml.decode(data)
    except profile_yaml.YamlRefused as exc:
        raise ProfileError("", exc.problem, exc.line, source) from None
    return parse_profile(text, source=source, base_dir=str(path.parent.resolve()))


def save_profile(profile: Profile, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(profile.to_yaml(), encoding="utf-8")
    tmp.replace(path)
    return path


def parse_profile(text: str, source: str = "profile", base_dir: str = ".") -> Profile:
    """The checked Profile; ProfileError (and nothing else) for any text that is not one."""
    try:
        data, lines = profile_yaml.read_yaml(text)
    except profile_yaml.YamlRefused as exc:
        raise ProfileError(key_name(exc.path), exc.problem, exc.line, source) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark else None
        problem = f"not valid YAML: {getattr(exc, 'problem', None) or exc}"
        if isinstance(exc, yaml.constructor.ConstructorError):
            problem += "; profiles use plain values: remove the tag (!!... or !...)"
        else:
            problem += "; check the indentation, quotes and brackets there"
        raise ProfileError("", problem, line, source) from None
    if data is None:
        raise ProfileError("", "the profile is empty; it needs at least name: and models: (see "
                           "profiles/default.yaml)", None, source)
    return _Checker(lines, source, base_dir).profile(data)


def key_name(path: tuple) -> str:
    """`protocol.repeats`, `models[0].task`: a key path as a profile's reader would write it."""
    return ".".join(str(p) if isinstance(p, str) else f"[{p}]" for p in path).replace(".[", "[")


class _Checker:
    def __init__(self, lines: dict[tuple, int], source: str, base_dir: str):
        self.lines, self.source, self.base_dir = lines, source, base_dir

    def fail(self, path: tuple, problem: str) -> ProfileError:
        key = key_name(path)
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

    def number(self, value, path, key: str):
        """value checked against its range in core.limits (LIMITS[key]), as that kind."""
        rule = limit(key)
        problem = rule.problem(value)
        if problem:
            raise self.fail(path, problem)
        return rule.kind(value)

    def count(self, value, path, key: str) -> None:
        """A list's number of entries checked against core.limits (other values: left to the
        caller's own check)."""
        if isinstance(value, list):
            problem = limit(key).problem(value)
            if problem:
                raise self.fail(path, problem)

    def int_list(self, value, path, default):
        if value is None:
            return default
        if isinstance(value, int) and not isinstance(value, bool):
            value = [value]
        if not isinstance(value, list) or not value:
            raise self.fail(path, f"{show_value(value)} is not allowed; expected a list of "
                            "positive integers")
        key = key_name(path)
        self.count(value, path, key)
        return tuple(self.number(v, path + (i,), key + "[]") for i, v in enumerate(value))

    def profile(self, data: Any) -> Profile:
        allowed = ("name", "device", "models", "techniques", "inputs", "protocol", "carbon",
                   "sensors", "save_models", "mlflow", "exclusive", "gpu_model")
        data = self.mapping(data, (), allowed)
        name = data.get("name")
        if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
            raise self.fail(
                ("name",), f"{show_value(name)} is not allowed; expected a name of up to 64 "
                "letters, digits, . _ - (starting with a letter or digit)"
            )
        device = str(data.get("device", "auto"))
        if not DEVICE_PATTERN.fullmatch(device):
            raise self.fail(("device",), f"{show_value(device)} is not allowed; expected auto, "
                            "cpu, cuda or cuda:N")
        self.count(data.get("models"), ("models",), "models")
        self.count(data.get("techniques"), ("techniques",), "techniques")
        models = self.models(data.get("models"))
        self.dataset_numbers(models)
        return Profile(
            name=name,
            device=device,
            models=models,
            techniques=self.techniques(data.get("techniques", ["baseline"])),
            inputs=self.inputs(data.get("inputs")),
            protocol=self.protocol(data.get("protocol")),
            carbon=self.carbon(data.get("carbon")),
            sensors=self.sensors(data.get("sensors")),
            save_models=self.flag(data, "save_models"),
            mlflow=self.flag(data, "mlflow"),
            exclusive=self.flag(data, "exclusive"),
            gpu_model=self.gpu_model(data.get("gpu_model")),
        )

    def flag(self, data: dict, key: str) -> bool:
        value = data.get(key, False)
        if not isinstance(value, bool):
            raise self.fail((key,), f"{show_value(value)} is not allowed; expected true or false")
        return value

    def gpu_model(self, value: Any) -> str | None:
        if value is None:
            return None
        if not isinstance(value, str) or not value.strip() or not value.isprintable():
            raise self.fail(("gpu_model",), f"{show_value(value)} is not allowed; expected part "
                            "of a GPU's name as NVML gives it, e.g. H100 or A100-SXM4-80GB")
        return value.strip()

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
            fields = self.mapping(raw, path, (*known, "task", "dataset", "trust_remote_code",
                                              "workload", "generation", "training"))
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
            workload, generation = self.workload(fields, path, task, source, ref)
            training = self.training(fields, path, workload)
            entries.append(ModelEntry(ref=ref, source=source, task=task, dataset=dataset,
                                      trust_remote_code=trust, base_dir=self.base_dir,
                                      workload=workload, generation=generation,
                                      training=training))
        return tuple(entries)

    def workload(self, fields: dict, path: tuple, task: str | None, source: str,
                 ref: str) -> tuple[str, dict[str, Any] | None]:
        from energy_console.core.models import sources
        from energy_console.core.spec.workloads import (
            GENERATE_TASKS,
            WORKLOADS,
            generation_settings,
        )

        workload = fields.get("workload", "infer")
        if workload not in WORKLOADS:
            raise self.fail(path + ("workload",), f"{show_value(workload)} is not allowed; "
                            f"expected one of {', '.join(WORKLOADS)}")
        generation = fields.get("generation")
        if generation is not None and workload != "generate":
            raise self.fail(path + ("generation",), "decoding settings apply to generate runs; "
                            "add `workload: generate` or remove `generation:`")
        try:
            settings = generation_settings(generation)
        except ValueError as exc:
            raise self.fail(path + ("generation",), str(exc)) from None
        if settings.pass_at_1 and not fields.get("dataset"):
            raise self.fail(path + ("generation", "pass_at_1"), "pass@1 runs the completions "
                            "against the dataset's tests; add `dataset:` with a HumanEval-style "
                            "JSONL (prompt, entry_point, test), e.g. data/code-tasks.jsonl")
        known_task = task or sources()[source].known_task(ref)
        if workload == "generate" and known_task not in (None, *GENERATE_TASKS):
            raise self.fail(path + ("workload",), f"generate runs need a causal-lm model; "
                            f"{ref} is {known_task}: remove `workload: generate`")
        return workload, generation

    def training(self, fields: dict, path: tuple, workload: str) -> dict[str, Any] | None:
        from energy_console.core.spec.workloads import training_settings

        training = fields.get("training")
        try:
            training_settings(training)
        except ValueError as exc:
            raise self.fail(path + ("training",), str(exc)) from None
        if workload == "train" and not fields.get("dataset"):
            raise self.fail(path + ("workload",), "train runs learn from labelled data; add "
                            "`dataset:` (e.g. data/sentiment-mini.csv, data/text-mini.txt)")
        return training

    def dataset_numbers(self, models: tuple[ModelEntry, ...]) -> None:
        """dataset.max_samples in range at load time (core.datasets checks the rest at run time)."""
        for i, entry in enumerate(models):
            if isinstance(entry.dataset, dict) and "max_samples" in entry.dataset:
                self.number(entry.dataset["max_samples"], ("models", i, "dataset", "max_samples"),
                            "models[].dataset.max_samples")

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
                                                   "resolutions", "max_new_tokens"))
        d = InputSizes()
        return InputSizes(
            batch_sizes=self.int_list(fields.get("batch_sizes"), ("inputs", "batch_sizes"),
                                      d.batch_sizes),
            sequence_lengths=self.int_list(fields.get("sequence_lengths"),
                                           ("inputs", "sequence_lengths"), d.sequence_lengths),
            resolutions=self.int_list(fields.get("resolutions"), ("inputs", "resolutions"),
                                      d.resolutions),
            max_new_tokens=self.int_list(fields.get("max_new_tokens"),
                                         ("inputs", "max_new_tokens"), d.max_new_tokens),
        )

    def protocol(self, value) -> ProtocolSettings:
        names = tuple(ProtocolSettings.__dataclass_fields__)
        fields = self.mapping(value, ("protocol",), names)
        d = ProtocolSettings()
        p = ("protocol",)
        iterations = fields.get("iterations")
        def get(name: str):
            return self.number(fields.get(name, getattr(d, name)), p + (name,), f"protocol.{name}")

        return ProtocolSettings(
            idle_seconds=get("idle_seconds"),
            warmup=get("warmup"),
            min_window_s=get("min_window_s"),
            repeats=get("repeats"),
            sample_hz=get("sample_hz"),
            iterations=None if iterations is None else get("iterations"),
            max_spread=get("max_spread"),
            run_timeout_s=get("run_timeout_s"),
            cooldown_s=get("cooldown_s"),
            threads=None if fields.get("threads") is None else get("threads"),
            idle_refresh_s=get("idle_refresh_s"),
            variant_cache=self.variant_cache(fields.get("variant_cache", d.variant_cache)),
        )

    def variant_cache(self, value: Any) -> str:
        if value not in VARIANT_CACHE_PLACES:
            raise self.fail(("protocol", "variant_cache"), f"{show_value(value)} is not allowed; "
                            f"expected one of {', '.join(VARIANT_CACHE_PLACES)}")
        return str(value)

    def carbon(self, value) -> CarbonSettings:
        fields = self.mapping(value, ("carbon",), ("intensity_g_per_kwh", "country"))
        intensity = fields.get("intensity_g_per_kwh")
        if intensity is not None:
            intensity = self.number(intensity, ("carbon", "intensity_g_per_kwh"),
                                    "carbon.intensity_g_per_kwh")
        country = fields.get("country")
        if country is not None:
            from energy_console.core.measure.carbon import intensity_table

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
            tdp = self.number(tdp, ("sensors", "cpu_tdp_w"), "sensors.cpu_tdp_w")
        return SensorSettings(cpu_tdp_w=tdp)

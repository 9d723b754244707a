"""Profiles: what a session measures, as plain data, and how it is written back as YAML.

A profile is untrusted text: core.spec.profile_yaml reads it (no aliases, no duplicate keys, no
control characters, bounded size), then core.session.profile_check checks it key by key against
the model sources, the techniques and core.spec.limits, and builds these dataclasses. A
ProfileError names the file, line, key, the bad value, what is allowed and the fix. `to_yaml`
writes the same document a user would write.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from energy_console.core.spec.technique import TechniqueSpec
from energy_console.core.spec.workloads import GenerationSettings, TrainingSettings, Workload

DEVICE_PATTERN = re.compile(r"auto|cpu|cuda|cuda:\d{1,3}")  # fullmatch: no trailing newline
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")  # fullmatch; it names folders
FILE_SOURCES = ("path", "onnx")  # sources whose ref is a file or folder, relative to the profile


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
    ref: str  # demo name, hub id, folder or file path, factory callable, as written
    source: str  # the key of its core.models source: demo | hf | path | factory | onnx | ...
    task: str | None = None
    dataset: dict[str, Any] | None = None  # checked by core.quality when the run starts
    trust_remote_code: bool = False
    base_dir: str = "."  # folder the profile was read from; relative paths start there
    workload: Workload = Workload.INFER
    # decoding settings of generate runs; None where the profile has no `generation:` (greedy)
    generation: GenerationSettings | None = None
    # optimizer and data of training (train runs, techniques that train); None: no `training:`
    training: TrainingSettings | None = None
    # the source's own keys (factory: args, kwargs, weights, input_shape, preprocessing, ...),
    # checked by the source (ModelSource.option_keys, check_options)
    options: dict[str, Any] | None = None

    @property
    def short_name(self) -> str:
        """The last path component (a factory's callable), for run ids and tables."""
        if self.source == "factory":
            return self.ref.rpartition(":")[2]
        return Path(self.ref.rstrip("/")).name or self.ref

    @property
    def resolved_ref(self) -> str:
        if self.source in FILE_SOURCES:
            return self.resolve(self.ref)
        return self.ref

    def resolve(self, path: str) -> str:
        """A path the profile names, relative to the profile's folder."""
        return str((Path(self.base_dir) / Path(path).expanduser()).resolve())

    def to_yaml(self) -> Any:
        if self.source == "demo" and not (self.task or self.dataset or self.trust_remote_code
                                          or self.workload != Workload.INFER
                                          or self.generation is not None
                                          or self.training is not None or self.options):
            return self.ref
        out: dict[str, Any] = {"hf" if self.source == "hf" else self.source: self.ref}
        if self.task:
            out["task"] = self.task
        out.update(self.options or {})
        if self.dataset:
            out["dataset"] = self.dataset
        if self.trust_remote_code:
            out["trust_remote_code"] = True
        if self.workload != Workload.INFER:
            out["workload"] = self.workload.value
        if self.generation is not None:
            out["generation"] = self.generation.to_yaml()
        if self.training is not None:
            out["training"] = self.training.to_yaml()
        return out


@dataclass(frozen=True)
class InputSizes:
    batch_sizes: tuple[int, ...] = (1,)
    sequence_lengths: tuple[int, ...] = (128,)
    resolutions: tuple[int, ...] = (224,)
    max_new_tokens: tuple[int, ...] = (32,)  # generate runs only


# off, the session's cache/, or the user's cache dir (core.worker.variant_cache)
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
    idle_refresh_s: float = 600.0  # idle baseline taken again after this long (core.session.rules)
    variant_cache: str = "off"  # compressed variants kept on disk: off | session | user
    threads: int | None = None  # torch CPU threads in the worker (None: torch's default)
    # windows added until the 95 % intervals of energy per inference and of median latency are
    # within this share of their value (None: exactly `repeats` undisturbed windows)
    target_ci_pct: float | None = None
    # the run's budget for its timed windows: more windows (for the target, or in place of
    # disturbed ones) start only while they fit in it
    max_run_s: float = 60.0


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
    techniques: tuple[TechniqueSpec, ...]
    device: str = "auto"
    inputs: InputSizes = field(default_factory=InputSizes)
    protocol: ProtocolSettings = field(default_factory=ProtocolSettings)
    carbon: CarbonSettings = field(default_factory=CarbonSettings)
    sensors: SensorSettings = field(default_factory=SensorSettings)
    save_models: bool = False  # keep each run's compressed / fine-tuned model in its run folder
    mlflow: bool = False  # log each run to MLflow (core.session.tracking), as `run --mlflow` does
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
        if (any(m.workload == Workload.GENERATE for m in self.models)
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
        """A new file's text (an edited file keeps its own: core.spec.profile_write)."""
        from energy_console.core.spec.profile_write import profile_text  # YAML: not at start-up

        return profile_text(self.to_dict())


def _set_fields(obj: Any) -> dict[str, Any]:
    return {k: v for k, v in dataclasses.asdict(obj).items() if v is not None}

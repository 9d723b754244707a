"""The profile checker: a profile's text, read strictly and checked key by key against the model
sources, the techniques and core.spec.limits, as the plain core.spec.profile dataclasses.

It sits above the plug-ins (models, compression) so the spec stays plain data they can import.
Every refusal is a ProfileError naming the file, line, key, the bad value, what is allowed and
the fix.
"""

from __future__ import annotations

import stat
from pathlib import Path
from typing import Any

import yaml
from energy_console.core.compression import parse_technique
from energy_console.core.compression.catalogue import technique_limits
from energy_console.core.measure.carbon import intensity_table
from energy_console.core.session.profile_entries import EntryChecker, key_name
from energy_console.core.spec import profile_yaml
from energy_console.core.spec.limits import LIMITS, Limit, show_value
from energy_console.core.spec.profile import (
    DEVICE_PATTERN,
    NAME_PATTERN,
    VARIANT_CACHE_PLACES,
    CarbonSettings,
    InputSizes,
    Profile,
    ProfileError,
    ProtocolSettings,
    SensorSettings,
)
from energy_console.core.spec.technique import TechniqueSpec

MAX_PROFILE_BYTES = profile_yaml.MAX_PROFILE_CHARS


def limit_rows() -> tuple[Limit, ...]:
    """Every range a profile's numbers are held to: the spec's table, then each technique
    parameter's (docs/safety.md's Ranges table is `markdown_table(limit_rows())`)."""
    return LIMITS + technique_limits()


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


class _Checker(EntryChecker):
    """A whole profile, section by section."""

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

    def gpu_model(self, value: Any) -> str | None:
        if value is None:
            return None
        if not isinstance(value, str) or not value.strip() or not value.isprintable():
            raise self.fail(("gpu_model",), f"{show_value(value)} is not allowed; expected part "
                            "of a GPU's name as NVML gives it, e.g. H100 or A100-SXM4-80GB")
        return value.strip()

    def techniques(self, value) -> tuple[TechniqueSpec, ...]:
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
            target_ci_pct=(None if fields.get("target_ci_pct") is None
                           else get("target_ci_pct")),
            max_run_s=get("max_run_s"),
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

"""The technique catalogue as rows and text, for `energy-console list techniques`, and the ranges
of its numeric parameters as rows of the profile's limits table (no torch)."""

from __future__ import annotations

import os
from dataclasses import dataclass

from energy_console.core.compression import techniques
from energy_console.core.spec.limits import Limit

NVIDIA_DRIVER_FILE = "/proc/driver/nvidia/version"


@dataclass(frozen=True)
class TechniqueRow:
    name: str
    family: str
    summary: str
    parameters: str  # "amount=0.5, scope=global|layer" or "-"
    devices: str
    layers: str
    available: bool
    why_not: str | None  # set when not available on this machine
    not_for: tuple[tuple[str, str], ...] = ()  # architectures it is known to break, and why


def technique_rows() -> list[TechniqueRow]:
    """One row per registered technique, with whether this machine has what it needs."""
    rows = []
    for technique in techniques().values():
        reason = technique.unavailable_reason() or _device_missing(technique.devices)
        rows.append(
            TechniqueRow(
                name=technique.name,
                family=technique.family,
                summary=technique.summary,
                parameters=", ".join(_describe_param(p) for p in technique.params) or "-",
                devices="/".join(technique.devices),
                layers=technique.layers,
                available=reason is None,
                why_not=reason,
                not_for=technique.not_for,
            )
        )
    return rows


def technique_limits() -> tuple[Limit, ...]:
    """Every numeric technique parameter's range, from its Param, as a row of the limits table
    (docs/safety.md, Ranges)."""
    out = []
    for name, technique in techniques().items():
        for param in technique.params:
            if (param.type in (int, float) and param.minimum is not None
                    and param.maximum is not None):
                out.append(Limit(f"techniques: {name}.{param.name}", param.type,
                                 param.minimum, param.maximum, unit=param.help))
    return tuple(out)


def _device_missing(devices: tuple[str, ...]) -> str | None:
    """Why none of the technique's device types is here (checked without importing torch)."""
    if "cpu" in devices or os.path.exists(NVIDIA_DRIVER_FILE):
        return None
    return f"runs on {'/'.join(devices)} only and this machine has no NVIDIA driver loaded"


def _describe_param(param) -> str:
    if param.choices:
        return f"{param.name}={param.default} ({'|'.join(map(str, param.choices))})"
    bounds = ""
    if param.minimum is not None or param.maximum is not None:
        bounds = f" [{_fmt(param.minimum)}..{_fmt(param.maximum)}]"
    return f"{param.name}={param.default}{bounds}"


def _fmt(value) -> str:
    return "" if value is None else f"{value:g}"


def format_techniques() -> str:
    """The catalogue as plain text: one block per technique, availability last."""
    lines = []
    for row in technique_rows():
        status = "available" if row.available else f"unavailable: {row.why_not}"
        lines += [
            f"{row.name}  [{row.family}]  {row.summary}",
            f"    parameters: {row.parameters}",
            f"    devices: {row.devices}; layers: {row.layers}",
            *(f"    not for {arch}: {why}" for arch, why in row.not_for),
            f"    {status}",
        ]
    lines.append(
        "chain: [a, b, ...] applies techniques in order as one run, e.g. "
        "{chain: [{structured-prune: {ratio: 0.3}}, dynamic-int8]}"
    )
    lines.append(
        "Device and model checks (GPU compute capability, layers present) happen per run; "
        "a run that cannot apply is recorded as skipped with the reason."
    )
    return "\n".join(lines)

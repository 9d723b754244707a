"""Figures as text: a unit chosen for the magnitude (ms or s; mJ or J), no e-notation for
everyday numbers, and intervals that respect what a quantity can be: an energy, a latency or a
size never below zero, a change (a ratio) with its asymmetric log-scale interval."""

from __future__ import annotations

import math

from energy_console.core.analysis.compare import Change
from energy_console.core.store.records import RunRecord

NOISE_MARK = "~"
ENERGY_UNITS = (("J", 1.0), ("mJ", 1e-3), ("µJ", 1e-6), ("nJ", 1e-9))
TIME_UNITS_MS = (("s", 1000.0), ("ms", 1.0), ("µs", 1e-3))


def to_float(value) -> float | None:
    """A runs.csv cell (or a number) as a float; None when empty or not a number."""
    if value is None or value == "":
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def plain(value: float, digits: int = 3) -> str:
    """`digits` significant digits without e-notation: 1320 -> `1,320`, 0.0000632 -> `0.0000632`."""
    if value == 0 or not math.isfinite(value):
        return f"{value:g}"
    magnitude = math.floor(math.log10(abs(value)))
    if magnitude >= digits - 1:
        return f"{round(value, digits - 1 - magnitude):,.0f}"
    text = f"{value:.{min(12, digits - 1 - magnitude)}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def _scaled(value: float, units: tuple[tuple[str, float], ...]) -> tuple[str, float]:
    for unit, scale in units:
        if abs(value) >= scale:
            return unit, scale
    return units[-1]


def _with_interval(value: float, ci95: float | None, scale: float, unit: str,
                   digits: str = ".3g") -> str:
    """`12.3 ±0.42 mJ`; an interval reaching below zero is cut there: `4.49 [0–12.3] J`."""
    shown = plain(value / scale) if digits == ".3g" else f"{value / scale:{digits}}"
    if ci95 is None:
        return f"{shown} {unit}"
    if ci95 >= value >= 0:
        return f"{shown} [0–{plain((value + ci95) / scale)}] {unit}"
    width = ci95 / scale
    half = f"{width:.0f}" if abs(width) >= 10 else plain(width, 2)
    return f"{shown} ±{half} {unit}"


def _in_unit(cell, units: tuple[tuple[str, float], ...], missing: str,
             ci95: float | None) -> str:
    """A cell in the unit of `units` that suits its magnitude, with its interval."""
    value = to_float(cell)
    if value is None:
        return missing
    unit, scale = _scaled(value, units)
    return _with_interval(value, ci95, scale, unit)


def format_energy(joules, missing: str = "-", ci95: float | None = None) -> str:
    """`12.3 mJ`, or `12.3 ±0.4 mJ` with an interval (both in the figure's unit)."""
    return _in_unit(joules, ENERGY_UNITS, missing, ci95)


def energy_with_ci(record: RunRecord) -> str:
    return format_energy(record.energy_j_per_inference, ci95=record.energy_j_per_inference_ci95)


def format_latency(ms, missing: str = "-", ci95: float | None = None) -> str:
    """`2.1 ms`, `1.32 s`: never `1.32e+03 ms`."""
    return _in_unit(ms, TIME_UNITS_MS, missing, ci95)


def format_power(watts, missing: str = "-", ci95: float | None = None) -> str:
    value = to_float(watts)
    if value is None:
        return missing
    if ci95 is not None and ci95 >= value >= 0:
        return f"{value:.1f} [0–{value + ci95:.1f}] W"
    return f"{value:.1f}{'' if ci95 is None else f' ±{ci95:.1f}'} W"


def format_co2e(grams, missing: str = "-") -> str:
    value = to_float(grams)
    return missing if value is None else f"{plain(value)} g"


def format_size(size_bytes, missing: str = "-") -> str:
    value = to_float(size_bytes)
    if value is None:
        return missing
    for unit in ("B", "KB", "MB"):
        if value < 1000:
            return f"{plain(value)} {unit}"
        value /= 1000
    return f"{plain(value)} GB"


def short(value) -> str:
    """A quality figure as a table shows it: 4 significant digits, never e-notation."""
    number = to_float(value)
    return "" if number is None else plain(number, 4)


def format_delta(difference: float | None, missing: str = "—") -> str:
    """A difference in the metric's own units, signed, 3 significant digits: `+0.0000632`."""
    if difference is None:
        return missing
    return "+0" if difference == 0 else f"{'+' if difference > 0 else '-'}{plain(abs(difference))}"


def _percent(fraction: float) -> str:
    p = fraction * 100.0
    if p == 0:
        return "+0"
    if abs(p) >= 10:
        return f"{p:+.0f}"
    return f"{p:+.1f}" if abs(p) >= 1 else f"{p:+.2f}"


def format_change(change: Change | None, missing: str = "") -> str:
    """`-25% (-30…-19)`: the change and its 95 % interval (asymmetric: a ratio's, on the log
    scale); within noise it reads `~+5% (-4…+15)`; an exact one (bytes) `-75%`."""
    if change is None:
        return missing
    if change.exact:
        return f"{_percent(change.fraction)}%"
    mark = NOISE_MARK if change.within_noise else ""
    if change.low is None or change.high is None:
        return f"{mark}{_percent(change.fraction)}%"
    return (f"{mark}{_percent(change.fraction)}% "
            f"({_percent(change.low)}…{_percent(change.high)})")


def count(value: float | None) -> str:
    if value is None:
        return "-"
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(value) >= scale:
            return f"{value / scale:.3g}{unit}"
    return f"{value:.3g}"

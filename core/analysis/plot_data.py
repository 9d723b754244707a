"""What the plots of a study draw, for the PNG report and the terminal alike: energy per
inference against quality or size, with error bars from the figures' own 95 % intervals, cut at
zero (an energy, a size, a perplexity cannot be negative), and axes that start at zero for energy
and size. Quality is shown as is (perplexity as perplexity), its label saying which way is
better."""

from __future__ import annotations

from dataclasses import dataclass

from energy_console.core.analysis.findings import GroupFindings
from energy_console.core.analysis.numbers import ENERGY_UNITS
from energy_console.core.spec.text import printable
from energy_console.core.store.records import RunRecord


@dataclass(frozen=True)
class PlotPoint:
    run: RunRecord
    x: float
    x_low: float
    x_high: float
    y: float
    y_low: float
    y_high: float


@dataclass(frozen=True)
class Scatter:
    """One plot: points with their intervals and the axes' labels and lower limits."""

    title: str
    x_label: str
    y_label: str
    points: tuple[PlotPoint, ...]
    x_min: float = 0.0  # energy from zero
    y_min: float | None = 0.0  # None: let the plot choose (a figure that may be negative)


def _bounds(value: float, ci95: float | None) -> tuple[float, float]:
    ci = ci95 or 0.0
    return max(0.0, value - ci), value + ci


def scatter(group: GroupFindings, kind: str) -> Scatter | None:
    """Energy per inference against `kind` ("quality" or "size") for one model at one input;
    None when no run has both figures."""
    figure = group.quality
    if kind == "quality" and figure is None:
        return None
    energies = [r.energy_j_per_inference for r in group.runs if r.energy_j_per_inference]
    if not energies:
        return None
    unit, scale = next(((u, s) for u, s in ENERGY_UNITS if max(energies) >= s), ENERGY_UNITS[-1])
    points = []
    for r in group.runs:
        if r.energy_j_per_inference is None:
            continue
        if kind == "quality" and figure is not None:
            y, y_ci = figure.value(r), figure.ci95(r)
        else:
            y, y_ci = (None if r.size_bytes is None else r.size_bytes / 1e6), 0.0
        if y is None:
            continue
        x = r.energy_j_per_inference / scale
        ci = None if r.energy_j_per_inference_ci95 is None else \
            r.energy_j_per_inference_ci95 / scale
        y_low, y_high = _bounds(y, y_ci) if y >= 0 else (y - (y_ci or 0.0), y + (y_ci or 0.0))
        points.append(PlotPoint(r, x, *_bounds(x, ci), y, y_low, y_high))
    if not points:
        return None
    if kind == "quality" and figure is not None:
        y_label = f"{figure.name} ({figure.direction})"
    else:
        y_label = "size (MB)"
    non_negative = all(p.y >= 0 for p in points)
    return Scatter(printable(f"{group.model_label} {group.input_size}"),
                   f"energy per inference ({unit}), 95 % interval", printable(y_label),
                   tuple(points), 0.0, 0.0 if non_negative else None)

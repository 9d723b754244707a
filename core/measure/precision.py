"""Whether a run's windows are enough: the precision protocol (`protocol.target_ci_pct`).

The runner judges a run's windows after each round once it has its `repeats`: enough when it
has `repeats` undisturbed windows and, with a target, the 95 % intervals of energy per inference
and of median latency are both within `target_ci_pct` % of their values. The same intervals fill
the run's record, so the record's `precision` (converged / budget) says what the judge saw.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from energy_console.core.measure.sensors.base import SensorInfo
from energy_console.core.measure.stats import median, median_ci95_half_width
from energy_console.core.measure.uncertainty import energy_uncertainty
from energy_console.core.spec.profile import ProtocolSettings
from energy_console.core.store.figures import WindowEnergy

CONVERGED = "converged"  # both intervals within the target
BUDGET = "budget"  # protocol.max_run_s was spent first


@dataclass(frozen=True)
class Precision:
    """What the windows of a run so far give: undisturbed windows and the relative intervals."""

    windows: int  # undisturbed windows judged
    energy_ci_pct: float | None  # 95 % half-width of energy per inference, % of its value
    latency_ci_pct: float | None  # 95 % half-width of median latency, % of its value
    enough: bool


def relative_pct(half_width: float | None, value: float | None) -> float | None:
    """A half-width as a percentage of its value (None where either is missing or value 0)."""
    if half_width is None or not value:
        return None
    return abs(half_width / value) * 100.0


def within_target(target_ci_pct: float, *intervals_pct: float | None) -> bool:
    return all(p is not None and p <= target_ci_pct for p in intervals_pct)


def latency_interval_pct(latencies_ms: Sequence[float]) -> float | None:
    """The median latency's 95 % interval (order statistics of every iteration), % of it."""
    if not latencies_ms:
        return None
    return relative_pct(median_ci95_half_width(latencies_ms), median(latencies_ms))


def judge(energy_ci_pct: float | None, latencies_ms: Sequence[float], windows: int,
          protocol: ProtocolSettings) -> Precision:
    """The verdict on `windows` undisturbed windows whose energy interval is energy_ci_pct and
    whose iterations took latencies_ms."""
    latency_ci_pct = latency_interval_pct(latencies_ms)
    enough = windows >= protocol.repeats and (
        protocol.target_ci_pct is None
        or within_target(protocol.target_ci_pct, energy_ci_pct, latency_ci_pct))
    return Precision(windows, energy_ci_pct, latency_ci_pct, enough)


def precision_status(protocol: ProtocolSettings, energy_ci_pct: float | None,
                     latency_ci_pct: float | None) -> str:
    """A finished run's record: '' without a target, else converged or budget."""
    if protocol.target_ci_pct is None:
        return ""
    if within_target(protocol.target_ci_pct, energy_ci_pct, latency_ci_pct):
        return CONVERGED
    return BUDGET


def undisturbed(windows: Sequence[WindowEnergy], iterations: Sequence[int],
                latencies_ms: Sequence[Sequence[float]]
                ) -> tuple[list[WindowEnergy], list[int], list[Sequence[float]]]:
    """The windows that count, with their iterations and latencies: the undisturbed ones, or
    every window where none is (the run is then marked with the cause). Latencies are kept
    whole where they do not pair with the windows one to one."""
    keep = [i for i, w in enumerate(windows) if not w.disturbed]
    if not keep or len(keep) == len(windows):
        return list(windows), list(iterations), list(latencies_ms)
    paired = len(latencies_ms) == len(windows)
    return ([windows[i] for i in keep], [iterations[i] for i in keep],
            [latencies_ms[i] for i in keep] if paired else list(latencies_ms))


def disturbances(windows: Sequence[WindowEnergy]) -> str:
    """Why the windows that count were disturbed: each cause once, with how many windows."""
    causes: dict[str, int] = {}
    for w in windows:
        if w.disturbed:
            causes[w.disturbed] = causes.get(w.disturbed, 0) + 1
    return "; ".join(f"{cause} ({n} of {len(windows)} windows)" for cause, n in causes.items())


def window_precision(*, windows: Sequence[WindowEnergy], iterations: Sequence[int],
                     batch_size: int, sensors: Sequence[SensorInfo],
                     latencies_ms: Sequence[Sequence[float]],
                     protocol: ProtocolSettings) -> Precision:
    """The runner's verdict on a run's windows so far, from the same intervals run_figures gives
    its record (the energy's combined uncertainty, core.measure.uncertainty): undisturbed
    windows only."""
    kept = [i for i, w in enumerate(windows) if not w.disturbed and iterations[i]]
    used = [s for s in sensors if all(s.name in windows[i].energy_j for i in kept)]
    per_inference = [sum(windows[i].energy_j[s.name] for s in used) / (iterations[i] * batch_size)
                     for i in kept]
    energy_ci_pct = None
    if used and per_inference:
        energy_ci_pct = energy_uncertainty([windows[i] for i in kept], per_inference, used,
                                           sample_period_s=1.0 / protocol.sample_hz).combined_pct
    latencies = [x for i in kept for x in latencies_ms[i]]
    return judge(energy_ci_pct, latencies, len(kept), protocol)

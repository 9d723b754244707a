"""The uncertainty budget of a run's energy per inference: its parts, each a 95 % half-width in
per cent of the figure, and their combination.

- **spread**: the windows' own disagreement, Student t over them (Type A: shrinks with more
  windows).
- **counter**: a counter sensor's step (RAPL µJ, NVML mJ): each window's difference of two reads
  is off by up to one step.
- **edges**: a sensor's reading changes every update period; a window's edges fall between
  updates, so each sensor's share of the window's energy is off by up to one period over the
  window (interpolation makes that a bound, not a typical error).
- **integration**: a power-only sensor is integrated by trapezoid between readings one sampling
  period apart (the sampler's, or the driver's for its own power samples): its share is off by up
  to one such period over the window. (The estimate is a counter of CPU time: its step counts
  under counter.)
- **idle** (dynamic energy only): the idle baseline is a mean over `idle_seconds`, off by up to
  one update (or sampling) period over that time; charged over a window, that error is a share
  of the dynamic figure.
- **model** (estimated sensors): the stated error of the estimate (MODEL_ERROR_PCT), its share.

Counter, edges and integration are bounds b on each window's relative error (Type B). Taken as
uniform within ±b (standard uncertainty b/√3) and independent between windows (where the edges
fall against the update grid is chance), the mean of n windows has a 95 % half-width of
1.96 · b / √3 / √n. The idle baseline is one reading shared by every window: 1.96 · b / √3.
The interval every view shows is the root sum of squares of spread, counter, edges and
integration (independent parts, relative to the same figure). Idle belongs to dynamic energy
only, and the model part is stated beside the interval, not in it: it moves every estimated
figure of a machine alike, so it does not widen a comparison of two runs measured there.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from energy_console.core.measure.sensors.base import POLLED_POWER, POWER_SAMPLES, SensorInfo
from energy_console.core.measure.stats import ci95_half_width, median
from energy_console.core.store.figures import EnergyUncertainty, WindowEnergy

UNIFORM_95 = 1.96 / math.sqrt(3)  # a uniform ±b's 95 % half-width, in units of b


def energy_uncertainty(windows: Sequence[WindowEnergy], per_inference: Sequence[float],
                       sensors: Sequence[SensorInfo], *, sample_period_s: float | None = None,
                       idle_power_w: float = 0.0, idle_s: float | None = None
                       ) -> EnergyUncertainty:
    """The budget of a run from its windows (charged to `sensors`, those counted) and their
    energies per inference; the sampling period and the idle baseline's power and length give
    the integration and idle parts."""
    value = median(per_inference)
    spread = ci95_half_width(per_inference)
    energy_j = median([sum(w.energy_j.get(s.name, 0.0) for s in sensors) for w in windows])
    duration_s = median([w.duration_s for w in windows])
    if energy_j <= 0 or duration_s <= 0 or not value:
        return EnergyUncertainty(None if spread is None else 0.0, 0.0, 0.0, 0.0, None, 0.0)
    share = {s.name: median([w.energy_j.get(s.name, 0.0) for w in windows]) / energy_j
             for s in sensors}
    counter = sum(s.quantum_j for s in sensors if s.quantum_j) / energy_j
    edges = sum(share[s.name] * s.update_period_s for s in sensors
                if s.update_period_s) / duration_s
    integration = sum(share[s.name] * _integration_period_s(s, sample_period_s)
                      for s in sensors) / duration_s
    model = max((share[s.name] * s.model_error_pct for s in sensors if s.model_error_pct),
                default=0.0)
    per_window = UNIFORM_95 / math.sqrt(len(windows)) * 100.0
    return EnergyUncertainty(
        spread_pct=None if spread is None else abs(spread / value) * 100.0,
        counter_pct=counter * per_window,
        edges_pct=edges * per_window,
        integration_pct=integration * per_window,
        idle_pct=_idle_pct(sensors, energy_j, duration_s, idle_power_w, idle_s,
                           sample_period_s),
        model_pct=model,
    )


def _integration_period_s(sensor: SensorInfo, sample_period_s: float | None) -> float:
    """The spacing of the power readings a sensor's energy is integrated between (0: none)."""
    if sensor.method == POLLED_POWER:
        return sample_period_s or 0.0
    if sensor.method == POWER_SAMPLES:
        return sensor.update_period_s or 0.0  # the driver's sampling interval
    return 0.0


def _idle_pct(sensors: Sequence[SensorInfo], energy_j: float, duration_s: float,
              idle_power_w: float, idle_s: float | None,
              sample_period_s: float | None) -> float | None:
    """The idle baseline's error, charged over a window, as a share of its dynamic energy."""
    idle_j = idle_power_w * duration_s
    dynamic_j = energy_j - idle_j
    if not idle_s or idle_j <= 0 or dynamic_j <= 0:
        return None
    period_s = max([s.update_period_s or 0.0 for s in sensors] + [sample_period_s or 0.0])
    return idle_j * UNIFORM_95 * (period_s / idle_s) / dynamic_j * 100.0

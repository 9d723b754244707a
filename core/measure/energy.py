"""A run's energy figures from its timed windows: pure functions, no sensors, no processes.

The runner measures each window (energy per sensor between the edges the worker reported); this
module turns windows into per-inference figures with their 95 % interval, charges each run only
with its own device's sensors, and says when a figure cannot be trusted: repeats that disagree,
windows too short for a sensor, a sensor that failed or whose counter stood still.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Mapping, Sequence

from energy_console.core.measure.carbon import CarbonIntensity, co2e_g
from energy_console.core.measure.cpu_load import IDLE_FIX
from energy_console.core.measure.precision import disturbances, undisturbed
from energy_console.core.measure.sensors.base import SensorInfo
from energy_console.core.measure.stats import (
    ci95_half_width,
    median,
    median_ci95_half_width,
    percentile,
    relative_spread,
)
from energy_console.core.measure.uncertainty import energy_uncertainty
from energy_console.core.spec.profile import ProtocolSettings
from energy_console.core.store.figures import (
    GenerationFigures,
    GenerationTimings,
    RepeatFigures,
    RunFigures,
    SensorFigures,
    TrainingFigures,
    TrainingTimings,
    WindowEnergy,
    compact_ids,
)
from energy_console.core.store.records import EnergySource

WINDOW_UPDATE_PERIODS = 10  # a timed window spans at least this many sensor update periods
# An idle baseline above this share of the power under load leaves dynamic energy meaningless.
IDLE_SHARE_OF_LOAD = 0.8
STILL_COUNTER_S = 1.0  # a measured sensor that gains no energy over this long has stopped


class NoEnergyWindows(RuntimeError):
    """The run ended without a single window charged to a sensor."""


def run_figures(
    *,
    windows: Sequence[WindowEnergy],
    iterations: Sequence[int],
    batch_size: int,
    sensors: Sequence[SensorInfo],
    idle_power_w: Mapping[str, float],
    latencies_ms: Sequence[Sequence[float]],
    max_spread: float,
    intensity: CarbonIntensity,
    generation: GenerationTimings | None = None,
    training: TrainingTimings | None = None,
    sample_period_s: float | None = None,
    idle_s: float | None = None,
) -> RunFigures:
    """Energy per inference (median over repeats, 95 % CI), dynamic energy, power, latency.

    `sensors` are those charged to the run (session.rules.charged_sensors); window energies of any
    other sensor are ignored. `iterations[i]` forward passes of `batch_size` ran in window i.
    A generate run (`generation` given) has prefill and full-generation windows in the order of
    `generation.window_kinds`: the per-inference figures come from the full generations (one
    inference = one prompt completed), the per-token ones from both (see generation_figures).
    A run that trained (`training` given) has its training windows first: a train run's are all
    its windows (one inference = one training sample), a training technique's come before the
    inference windows and are charged to the fine-tune only (see training_figures).
    The interval of energy per inference is its uncertainty budget combined (core.measure
    .uncertainty): the sampling period and the idle baseline's length give two of its parts.
    """
    if training is not None:
        count = training.windows
        if len(windows) < count:
            raise NoEnergyWindows(f"{len(windows)} energy windows for {count} training windows "
                                  "were measured")
        rest = windows if not training.in_compression else windows[count:]
        figures = run_figures(
            windows=rest, iterations=iterations, batch_size=batch_size, sensors=sensors,
            idle_power_w=idle_power_w, latencies_ms=latencies_ms, max_spread=max_spread,
            intensity=intensity, generation=generation, sample_period_s=sample_period_s,
            idle_s=idle_s)
        trained = training_figures(windows[:count], training, figures.sensors)
        return dataclasses.replace(figures, training=trained)
    if generation is not None:
        kinds = generation.window_kinds
        if len(windows) != len(kinds):
            raise NoEnergyWindows(
                f"{len(windows)} energy windows for {len(kinds)} marked windows were measured")
        full = [w for w, kind in zip(windows, kinds, strict=True) if kind == "generate"]
        figures = run_figures(
            windows=full, iterations=iterations, batch_size=batch_size, sensors=sensors,
            idle_power_w=idle_power_w, latencies_ms=latencies_ms, max_spread=max_spread,
            intensity=intensity, sample_period_s=sample_period_s, idle_s=idle_s)
        by_name = {s.name: s for s in sensors}
        charged = [_charged(w, by_name) for w in windows]
        return dataclasses.replace(
            figures, generation=generation_figures(charged, generation, figures.sensors))
    by_name = {s.name: s for s in sensors}
    windows = [_charged(w, by_name) for w in windows]
    if not windows or len(windows) != len(iterations):
        raise NoEnergyWindows(
            f"{len(windows)} energy windows for {len(iterations)} repeats were measured")
    measured = len(windows)
    windows, iterations, latencies_ms = undisturbed(windows, iterations, latencies_ms)
    names = [n for n in by_name if all(n in w.energy_j for w in windows)]
    if not names:
        raise NoEnergyWindows("no sensor charged to this run has energy for every window")
    inferences = [n * batch_size for n in iterations]
    idle_w = sum(idle_power_w.get(n, 0.0) for n in names)
    repeats = tuple(
        RepeatFigures(
            energy_j_per_inference=sum(w.energy_j[n] for n in names) / count,
            inferences=count,
            duration_s=w.duration_s,
            energy_j={n: w.energy_j[n] for n in names},
            other_cpu_load_pct=w.other_cpu_load_pct,
        )
        for w, count in zip(windows, inferences, strict=True)
    )
    per_inference = [r.energy_j_per_inference for r in repeats]
    dynamic = [(sum(r.energy_j.values()) - idle_w * r.duration_s) / r.inferences
               for r in repeats]
    power = [sum(r.energy_j.values()) / r.duration_s for r in repeats]
    per_sensor = {
        n: SensorFigures(
            measured=by_name[n].measured,
            method=by_name[n].method,
            energy_j_per_inference=median([r.energy_j[n] / r.inferences for r in repeats]),
            avg_power_w=median([r.energy_j[n] / r.duration_s for r in repeats]),
            idle_power_w=idle_power_w.get(n),
        )
        for n in names
    }
    used = [by_name[n] for n in names]
    faults = window_faults(windows, used)
    warnings = spread_warnings(per_inference, max_spread)
    warnings += short_window_warnings(used, median([w.duration_s for w in windows]))
    warnings += idle_share_warnings(idle_w, median(power))
    latencies = [x for repeat in latencies_ms for x in repeat]
    energy = median(per_inference)
    budget = energy_uncertainty(windows, per_inference, used, sample_period_s=sample_period_s,
                                idle_power_w=idle_w, idle_s=idle_s)
    combined = budget.combined_pct
    return RunFigures(
        energy_j_per_inference=energy,
        energy_j_per_inference_ci95=None if combined is None else abs(energy) * combined / 100,
        dynamic_energy_j_per_inference=median(dynamic),
        avg_power_w=median(power),
        avg_power_w_ci95=ci95_half_width(power),
        idle_power_w=idle_w,
        latency_ms_p50=percentile(latencies, 50),
        latency_ms_p50_ci95=median_ci95_half_width(latencies),
        latency_ms_p95=percentile(latencies, 95),
        throughput_per_s=sum(inferences) / sum(w.duration_s for w in windows),
        co2e_g_per_1k_inferences=co2e_g(energy * 1000, intensity),
        energy_source=energy_source(used, bool(faults)),
        energy_fault=faults,
        sensors=tuple(sorted(names)),
        other_cpu_load_pct=median([w.other_cpu_load_pct for w in windows]),
        per_sensor=per_sensor,
        per_repeat=repeats,
        warnings=tuple(warnings),
        windows_dropped=measured - len(windows),
        disturbed=disturbances(windows),
        uncertainty=budget,
        energy_uncertainty=budget.text(),
    )


def generation_figures(windows: Sequence[WindowEnergy], timings: GenerationTimings,
                       sensors: Sequence[str]) -> GenerationFigures:
    """Per-token figures of a generate run, optimum-benchmark's way: decode = full − prefill.

    Repeat i pairs the i-th prefill window with the i-th full-generation window. Prefill energy
    per prompt token comes from the prefill window; the full window's prefill share is that times
    the prompt tokens it fed, and the rest of its energy is decode. Every "per output token"
    figure divides by every token generated (each prompt's first included), so prefill and decode
    per output token add up to the full generation's. Each figure is the median over repeats
    with its Student-t 95 % interval; a difference's interval is the intervals of its terms added
    in quadrature (the two windows are measured apart). Latencies are per call or per decode step
    with the order-statistics interval of their median, as latency_ms_p50's."""
    def energy(w: WindowEnergy) -> float:
        return sum(w.energy_j.get(n, 0.0) for n in sensors)

    kinds = timings.window_kinds
    prefill = [i for i, k in enumerate(kinds) if k == "prefill"]
    full = [i for i, k in enumerate(kinds) if k == "generate"]
    per_output, per_prompt, prefill_seq, full_seq, decode_seq = [], [], [], [], []
    decode_tok, prefill_tok = [], []
    for p, f in zip(prefill, full, strict=False):
        j_per_prompt_token = energy(windows[p]) / max(1, timings.prompt_tokens[p])
        sequences, made = timings.sequences[f], max(1, timings.output_tokens[f])
        prefill_j = j_per_prompt_token * timings.prompt_tokens[f]
        full_j = energy(windows[f])
        per_prompt.append(j_per_prompt_token)
        per_output.append(full_j / made)
        prefill_seq.append(prefill_j / sequences)
        full_seq.append(full_j / sequences)
        decode_seq.append((full_j - prefill_j) / sequences)
        decode_tok.append((full_j - prefill_j) / made)
        prefill_tok.append(prefill_j / made)
    full_s = sum(windows[f].duration_s for f in full)
    sequences_fed = sum(timings.sequences[f] for f in full)
    made_total = sum(timings.output_tokens[f] for f in full)
    decode_s = sum(timings.decode_ms) / 1000.0
    prefill_ms = timings.prefill_latencies_ms
    return GenerationFigures(
        prompt_tokens=sum(timings.prompt_tokens[f] for f in full) / max(1, sequences_fed),
        output_tokens=made_total / max(1, sequences_fed),
        energy_j_per_output_token=_median_or_none(per_output),
        energy_j_per_output_token_ci95=ci95_half_width(per_output),
        energy_j_per_prompt_token=_median_or_none(per_prompt),
        energy_j_per_prompt_token_ci95=ci95_half_width(per_prompt),
        prefill_energy_j_per_inference=_median_or_none(prefill_seq),
        prefill_energy_j_per_inference_ci95=ci95_half_width(prefill_seq),
        decode_energy_j_per_inference=_median_or_none(decode_seq),
        decode_energy_j_per_inference_ci95=quadrature(ci95_half_width(full_seq),
                                                      ci95_half_width(prefill_seq)),
        decode_energy_j_per_output_token=_median_or_none(decode_tok),
        decode_energy_j_per_output_token_ci95=quadrature(ci95_half_width(per_output),
                                                         ci95_half_width(prefill_tok)),
        e2e_tokens_per_s=made_total / full_s if full_s > 0 else None,
        ttft_ms_p50=_percentile_or_none(timings.ttft_ms, 50),
        tpot_ms_p50=_percentile_or_none(timings.tpot_ms, 50),
        tpot_ms_p95=_percentile_or_none(timings.tpot_ms, 95),
        fixed_length=timings.fixed_length,
        prompt_ids=compact_ids(timings.prompt_ids),
        # tokens after each row's first, over the time from a call's first token to its end
        decode_tokens_per_s=(made_total - sequences_fed) / decode_s if decode_s > 0 else None,
        ttft_ms_p50_ci95=median_ci95_half_width(timings.ttft_ms),
        tpot_ms_p50_ci95=median_ci95_half_width(timings.tpot_ms),
        prefill_latency_ms_p50=_percentile_or_none(prefill_ms, 50),
        prefill_latency_ms_p50_ci95=median_ci95_half_width(prefill_ms),
        prefill_latency_ms_mean=sum(prefill_ms) / len(prefill_ms) if prefill_ms else None,
        prefill_latency_ms_mean_ci95=ci95_half_width(prefill_ms),
    )


def _percentile_or_none(values: Sequence[float], q: float) -> float | None:
    return percentile(values, q) if values else None


def training_figures(windows: Sequence[WindowEnergy], timings: TrainingTimings,
                     sensors: Sequence[str]) -> TrainingFigures:
    """Energy per optimizer step (median over the training windows, Student-t 95 % interval) and
    of the whole fine-tune: per step × every step it took, its interval scaled the same way."""
    per_step = [sum(w.energy_j.get(n, 0.0) for n in sensors) / steps
                for w, steps in zip(windows, timings.steps, strict=True) if steps]
    seconds = sum(w.duration_s for w in windows)
    step_j = _median_or_none(per_step)
    step_ci = ci95_half_width(per_step)
    return TrainingFigures(
        train_steps=timings.total_steps,
        energy_j_per_step=step_j,
        energy_j_per_step_ci95=step_ci,
        train_energy_j=None if step_j is None else step_j * timings.total_steps,
        train_energy_j_ci95=None if step_ci is None else step_ci * timings.total_steps,
        train_samples_per_s=sum(timings.samples) / seconds if seconds > 0 else None,
        train_loss_start=timings.loss_start,
        train_loss_end=timings.loss_end,
    )


def quadrature(*half_widths: float | None) -> float | None:
    """The interval of a sum or difference of independently measured figures."""
    if any(h is None for h in half_widths):
        return None
    return math.sqrt(sum(h * h for h in half_widths if h is not None))


def _median_or_none(values: Sequence[float]) -> float | None:
    return median(values) if values else None


def _charged(window: WindowEnergy, sensors: Mapping[str, SensorInfo]) -> WindowEnergy:
    return WindowEnergy(
        duration_s=window.duration_s,
        energy_j={n: e for n, e in window.energy_j.items() if n in sensors},
        other_cpu_load_pct=window.other_cpu_load_pct,
        worker_cpu_s=window.worker_cpu_s,
        faults={n: f for n, f in window.faults.items() if n in sensors},
        disturbed=window.disturbed,
    )


def energy_source(sensors: Sequence[SensorInfo], faulty: bool = False) -> EnergySource:
    if faulty:
        return "faulty"
    if all(s.measured for s in sensors):
        return "measured"
    return "estimated" if not any(s.measured for s in sensors) else "mixed"


def window_faults(windows: Sequence[WindowEnergy], sensors: Sequence[SensorInfo]) -> str:
    """What went wrong with the run's sensors during its windows ('' when nothing did).

    A sensor that raised while a window was open, or a measured sensor that gained no energy over
    a window long enough for its counter to move, cannot give a figure: a flat counter would read
    as 0 J labelled measured."""
    problems: dict[str, str] = {}
    for window in windows:
        for name, fault in window.faults.items():
            problems.setdefault(name, f"{name} failed during a window ({fault})")
        for sensor in sensors:
            still_s = max(STILL_COUNTER_S, 2 * (sensor.update_period_s or 0.0))
            if (sensor.measured and window.duration_s >= still_s
                    and window.energy_j.get(sensor.name, 0.0) <= 0.0):
                problems.setdefault(
                    sensor.name,
                    f"{sensor.name} did not move over a {window.duration_s:.3g} s window "
                    "(counter stuck or sensor gone)")
    return "; ".join(problems[n] for n in sorted(problems))


def spread_warnings(per_inference: Sequence[float], max_spread: float) -> list[str]:
    spread = relative_spread(per_inference)
    if len(per_inference) > 1 and spread > max_spread:
        return [f"repeats disagree by {spread:.0%} (more than protocol.max_spread "
                f"{max_spread:.0%}): the machine was busy or the window too short"]
    return []


def idle_share_warnings(idle_w: float, load_w: float) -> list[str]:
    """An idle baseline close to the power under load: dynamic energy means nothing there."""
    if idle_w <= 0 or load_w <= 0 or idle_w <= IDLE_SHARE_OF_LOAD * load_w:
        return []
    return [f"idle power {idle_w:.1f} W is {idle_w / load_w:.0%} of the power under load "
            f"({load_w:.1f} W): the baseline was taken on a busy machine, or the run barely "
            f"loads it, so dynamic energy (total minus idle) is not meaningful. Fix: {IDLE_FIX}"]


def short_window_warnings(sensors: Sequence[SensorInfo], window_s: float) -> list[str]:
    """Windows under WINDOW_UPDATE_PERIODS update periods of a sensor, with the error bound."""
    warnings = []
    for sensor in sensors:
        period_s = sensor.update_period_s
        if period_s and window_s < WINDOW_UPDATE_PERIODS * period_s:
            warnings.append(
                f"timed windows of {window_s:.3g} s are shorter than {WINDOW_UPDATE_PERIODS} "
                f"update periods of {sensor.name} ({period_s:.3g} s): its energy is uncertain by "
                f"up to ±{period_s / window_s:.0%}; lengthen protocol.min_window_s or drop "
                "protocol.iterations"
            )
    return warnings


def protocol_for_sensors(protocol: ProtocolSettings,
                         sensors: Sequence[SensorInfo]) -> ProtocolSettings:
    """The protocol with windows of at least WINDOW_UPDATE_PERIODS updates of the slowest
    sensor (and of the sampler), unless the profile fixed the iterations."""
    periods = [1.0 / protocol.sample_hz] + [s.update_period_s or 0.0 for s in sensors]
    shortest_s = WINDOW_UPDATE_PERIODS * max(periods)
    if protocol.iterations is None and protocol.min_window_s < shortest_s:
        return dataclasses.replace(protocol, min_window_s=shortest_s)
    return protocol


def nvml_index(device: str, visible_devices: str | None = None) -> int | None:
    """NVML's index of a torch CUDA device (CUDA_VISIBLE_DEVICES renumbers torch's)."""
    if not device.startswith("cuda"):
        return None
    if visible_devices is None:
        visible_devices = os.environ.get("CUDA_VISIBLE_DEVICES", "")
    torch_index = int(device.split(":")[1]) if ":" in device else 0
    visible = [v.strip() for v in visible_devices.split(",") if v.strip()]
    if torch_index < len(visible) and visible[torch_index].isdigit():
        return int(visible[torch_index])
    return torch_index

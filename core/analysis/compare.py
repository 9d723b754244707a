"""Changes between runs that carry their uncertainty.

A change of a figure against its reference (the same model's baseline, or the same run in another
session) is a fraction with a 95 % interval propagated from both figures' intervals. When the
interval includes zero the change is *within noise*: every view marks it so, rather than show a
difference the measurement cannot tell from nothing.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from energy_console.core.analysis.quality_figure import LOWER_IS_BETTER
from energy_console.core.measure.stats import t95
from energy_console.core.store.records import RunRecord

# Compared figures and the column holding each one's 95 % half-width (None: exact, e.g. bytes).
COMPARED: dict[str, str | None] = {
    "energy_j_per_inference": "energy_j_per_inference_ci95",
    "avg_power_w": "avg_power_w_ci95",
    "latency_ms_p50": "latency_ms_p50_ci95",
    "size_bytes": None,
}


@dataclass(frozen=True)
class Change:
    """value / reference - 1, with its 95 % interval [low, high] as fractions (None: unknown).

    A change is a ratio, so its interval is computed on the log scale: asymmetric, and never
    below -100 % (nothing can save more than all of it)."""

    fraction: float
    low: float | None
    high: float | None

    @property
    def within_noise(self) -> bool:
        """The interval includes zero; an unknown interval is never called a finding."""
        if self.low is None or self.high is None:
            return True
        return self.low <= 0.0 <= self.high and not self.exact

    @property
    def exact(self) -> bool:
        """A figure without noise (bytes): its interval is the figure itself."""
        return self.low is not None and self.low == self.high == self.fraction

    @property
    def percent(self) -> float:
        return self.fraction * 100.0


def relative_change(value: float | None, value_ci95: float | None, reference: float | None,
                    reference_ci95: float | None, exact: bool = False) -> Change | None:
    """The change of `value` against `reference`. The interval is the ratio's on the log scale:
    ln(value/reference) ± the root sum of squares of both relative errors (first order), taken
    back with exp, so that it is asymmetric and stays above -100 %."""
    if value is None or not reference:
        return None
    ratio = value / reference
    if exact:
        return Change(ratio - 1.0, ratio - 1.0, ratio - 1.0)
    if value_ci95 is None or reference_ci95 is None or value <= 0 or reference <= 0:
        return Change(ratio - 1.0, None, None)
    log_half_width = math.hypot(value_ci95 / value, reference_ci95 / reference)
    return Change(ratio - 1.0, ratio * math.exp(-log_half_width) - 1.0,
                  ratio * math.exp(log_half_width) - 1.0)


def change_of(record: RunRecord, reference: RunRecord, column: str) -> Change | None:
    ci_column = COMPARED[column]
    return relative_change(
        getattr(record, column), getattr(record, ci_column) if ci_column else None,
        getattr(reference, column), getattr(reference, ci_column) if ci_column else None,
        exact=ci_column is None,
    )


def baseline_key(record: RunRecord) -> tuple:
    """Runs compared with each other: same model, workload, device and input size."""
    return (record.model, record.workload, record.device, record.batch_size, record.seq_len,
            record.resolution, record.max_new_tokens)


# Each runtime's reference technique: a variant is compared with the baseline of its own
# runtime (an onnx-* variant with the exported fp32 graph, as docs/techniques.md says).
RUNTIME_BASELINES = {"torch": "baseline", "onnxruntime": "onnx-fp32"}


def runtime_of(record: RunRecord) -> str:
    """The runtime family of a run; records from before the runtime column by technique."""
    if record.runtime in RUNTIME_BASELINES:
        return record.runtime
    onnx = any(step.startswith("onnx-") for step in record.technique.split("+"))
    return "onnxruntime" if onnx else "torch"


def reference_technique(record: RunRecord) -> str:
    """The technique a run is compared with: its runtime's baseline."""
    return RUNTIME_BASELINES[runtime_of(record)]


def is_reference(record: RunRecord) -> bool:
    return record.technique == reference_technique(record)


def references(records: Sequence[RunRecord]) -> dict[tuple, RunRecord]:
    """Finished reference runs by (baseline_key, technique)."""
    return {(baseline_key(r), r.technique): r for r in records
            if r.finished and r.technique in RUNTIME_BASELINES.values()}


def reference_of(record: RunRecord, refs: dict[tuple, RunRecord]) -> RunRecord | None:
    """The run `record` is compared with (None for a reference itself, or when its runtime's
    baseline was not measured: never another runtime's in its place)."""
    if is_reference(record):
        return None
    return refs.get((baseline_key(record), reference_technique(record)))


def changes_vs_baseline(records: Sequence[RunRecord]) -> dict[str, dict[str, Change | None]]:
    """Per run id, the change of each COMPARED figure against its runtime's baseline run at the
    same input (None for the baselines themselves and for runs without a finished baseline)."""
    refs = references(records)
    out: dict[str, dict[str, Change | None]] = {}
    for record in records:
        base = reference_of(record, refs) if record.finished else None
        out[record.run_id] = {
            column: change_of(record, base, column) if base is not None else None
            for column in COMPARED
        }
    return out


def missing_references(records: Sequence[RunRecord]) -> list[str]:
    """One line per finished run whose runtime's baseline is missing from the session."""
    refs = references(records)
    return [f"{r.run_id}: no finished {reference_technique(r)} run at this input to compare "
            f"with ({runtime_of(r)}); not compared with another runtime's baseline"
            for r in records
            if r.finished and not is_reference(r) and reference_of(r, refs) is None]


def quality_score(record: RunRecord) -> float | None:
    """Quality oriented so that higher is better (perplexity negated)."""
    if record.quality_value is None:
        return None
    sign = -1.0 if record.quality_metric in LOWER_IS_BETTER else 1.0
    return sign * record.quality_value


@dataclass(frozen=True)
class BreakEven:
    """After how many inferences a variant's training energy is paid back by what it saves per
    inference against its baseline: train_energy_j ÷ (baseline − variant energy per inference).

    The interval is first-order, like Change's: the relative errors of the training energy and
    of the saving (the two runs' intervals in quadrature) added in quadrature. A saving whose
    interval includes zero cannot bound the count from above: `within_noise`. No saving at all
    (the variant costs as much or more per inference) never pays back: `inferences` is None."""

    inferences: float | None
    ci95: float | None
    train_energy_j: float
    saving_j_per_inference: float
    saving_ci95: float | None

    @property
    def within_noise(self) -> bool:
        return self.saving_ci95 is None or abs(self.saving_j_per_inference) <= self.saving_ci95


def break_even(record: RunRecord, baseline: RunRecord) -> BreakEven | None:
    """The break-even of a finished run that trained (None for one without a training cost)."""
    train_j, train_ci = record.train_energy_j, record.train_energy_j_ci95
    energy, base = record.energy_j_per_inference, baseline.energy_j_per_inference
    if train_j is None or energy is None or base is None or not record.finished:
        return None
    saving = base - energy
    cis = (record.energy_j_per_inference_ci95, baseline.energy_j_per_inference_ci95)
    saving_ci = None if None in cis else math.hypot(*(c or 0.0 for c in cis))
    if saving <= 0:
        return BreakEven(None, None, train_j, saving, saving_ci)
    count = train_j / saving
    ci = None
    if saving_ci is not None and train_ci is not None and train_j > 0:
        ci = count * math.hypot(train_ci / train_j, saving_ci / saving)
    return BreakEven(count, ci, train_j, saving, saving_ci)


@dataclass(frozen=True)
class TrainingGain:
    """What a run's training bought against its post-training variant (the same technique
    without training, e.g. prune without finetune, static-int8 for qat): quality gained,
    oriented so that more is better, and that per joule the training cost."""

    untrained: RunRecord
    quality_gain: float
    per_joule: float | None


def training_comparisons(records: Sequence[RunRecord]
                         ) -> dict[str, tuple[BreakEven | None, TrainingGain | None]]:
    """Per finished run that trained: its break-even against its baseline, and its gain over its
    post-training variant measured in the same session (either None where there is none)."""
    finished = [r for r in records if r.finished]
    refs = references(finished)
    by_technique = {(baseline_key(r), r.technique): r for r in finished}
    out: dict[str, tuple[BreakEven | None, TrainingGain | None]] = {}
    for record in finished:
        if record.train_energy_j is None or record.workload == "train":
            continue
        base = reference_of(record, refs)
        even = break_even(record, base) if base is not None else None
        gain = None
        untrained = by_technique.get((baseline_key(record), record.untrained_technique))
        score = quality_score(record)
        other = quality_score(untrained) if untrained is not None else None
        if untrained is not None and score is not None and other is not None:
            change = score - other
            gain = TrainingGain(untrained, change,
                                change / record.train_energy_j if record.train_energy_j else None)
        out[record.run_id] = (even, gain)
    return out


def repeats_to_resolve(record: RunRecord, difference: float) -> int | None:
    """Repeats this run's spread would need for a 95 % interval of energy per inference as
    narrow as `difference` (a fraction, e.g. 0.05) of the figure; None without a spread."""
    n, energy = record.repeats, record.energy_j_per_inference
    ci = record.energy_j_per_inference_ci95
    if not n or n < 2 or ci is None or not energy:
        return None
    relative_sd = ci * math.sqrt(n) / t95(n - 1) / energy
    needed = 2
    while t95(needed - 1) * relative_sd / math.sqrt(needed) > difference and needed < 10_000:
        needed += 1
    return needed


def run_key(record: RunRecord) -> tuple:
    """How a run is matched across sessions: model, technique, device and input size."""
    return (record.model, record.workload, record.technique, record.device, record.batch_size,
            record.seq_len, record.resolution, record.max_new_tokens)


@dataclass(frozen=True)
class MatchedRun:
    """One run measured in both sessions: B's figures against A's."""

    a: RunRecord
    b: RunRecord
    changes: dict[str, Change | None]


def match_sessions(a: Sequence[RunRecord], b: Sequence[RunRecord]
                   ) -> tuple[list[MatchedRun], list[RunRecord], list[RunRecord]]:
    """(runs finished in both with B's change against A, runs only in A, runs only in B)."""
    in_b = {run_key(r): r for r in b if r.finished}
    matched, only_a = [], []
    for record in (r for r in a if r.finished):
        other = in_b.pop(run_key(record), None)
        if other is None:
            only_a.append(record)
        else:
            matched.append(MatchedRun(record, other, {c: change_of(other, record, c)
                                                      for c in COMPARED}))
    return matched, only_a, list(in_b.values())


# What a run's record says of the machine it ran on; (column, tolerance): a number differing by
# more than that fraction counts (clocks and temperatures move a little run to run).
MACHINE_COLUMNS: tuple[tuple[str, float], ...] = (
    ("node", 0.0), ("gpu_name", 0.0), ("gpu_driver", 0.0), ("gpu_power_limit_w", 0.0),
    ("gpu_sm_clock_mhz", 0.10), ("gpu_temperature_c", 0.15),
)


def machine_differences(a: RunRecord, b: RunRecord) -> list[str]:
    """How the machines of two runs of one figure differ (host, GPU model, driver, power limit,
    clocks, temperature), as `column: A -> B`; empty when nothing known differs."""
    out = []
    for column, tolerance in MACHINE_COLUMNS:
        va, vb = getattr(a, column), getattr(b, column)
        if va in (None, "") or vb in (None, "") or va == vb:
            continue
        if isinstance(va, (int, float)) and isinstance(vb, (int, float)) and tolerance:
            if abs(vb - va) <= tolerance * max(abs(va), abs(vb)):
                continue
        out.append(f"{column}: {va} -> {vb}")
    return out

"""What a run measured before it becomes a runs.csv row (core/records.py): the worker's
`WorkerResult` (pickled over its pipe) with its workload timings, and the runner's `RunFigures`
(core/energy.py computes them from the sensors' samples). Lightweight: the UI imports records.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from energy_console.core.quality.result import QualityResult
from energy_console.core.store.records import RUN_COLUMNS, EnergySource


@dataclass(frozen=True)
class WorkerResult:
    """What a worker sends back at the end of a run (pickled over its pipe)."""

    device: str
    task: str
    iterations: tuple[int, ...]  # per repeat
    latencies_ms: tuple[tuple[float, ...], ...]  # per repeat, per iteration
    first_warmup_t: float | None  # monotonic
    load_s: float
    compress_s: float
    size_bytes: int
    params: int
    nonzero_params: int
    dtype_bytes: dict[str, int]
    peak_mem_mb: float
    quality: QualityResult
    warnings: tuple[str, ...]
    reference_seconds: float
    reference_cache_hit: bool
    technique_details: dict[str, Any]
    torch_threads: int
    flops_per_inference: float | None = None
    generation: GenerationTimings | None = None  # generate runs
    run_started_t: float | None = None  # monotonic, when the worker began this run's size
    variant_cache_hit: bool = False  # the compressed module was read from the variant cache
    variant_cache_read_s: float = 0.0  # reading it (compress_s is 0 then)
    runtime: str = "torch"  # what ran the timed windows: torch, onnxruntime
    training: TrainingTimings | None = None  # train runs, and runs of techniques that train
    saved_model: str = ""  # relative to the session directory
    saved_model_bytes: int | None = None


@dataclass(frozen=True)
class TrainingTimings:
    """What a training loop counted. Its timed windows come first in the run's window order:
    all of a train run's windows, or the leading ones of a run whose technique trained
    (`in_compression`), before its inference windows."""

    windows: int  # timed windows of training
    steps: tuple[int, ...]  # optimizer steps per window
    samples: tuple[int, ...]  # training samples per window
    total_steps: int  # optimizer steps of the whole fine-tune (warm-up steps included)
    loss_start: float | None  # held-out loss before training
    loss_end: float | None  # held-out loss after training
    losses: tuple[float, ...] = ()  # training loss of every step, in order
    in_compression: bool = False


@dataclass(frozen=True)
class TrainingFigures:
    """The training columns of a RunRecord."""

    train_steps: int
    energy_j_per_step: float | None
    energy_j_per_step_ci95: float | None
    train_energy_j: float | None
    train_energy_j_ci95: float | None
    train_samples_per_s: float | None
    train_loss_start: float | None
    train_loss_end: float | None

    def columns(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class GenerationTimings:
    """What a generate run's worker counted, beside WorkerResult's timings of its generate
    windows (iterations and latencies_ms cover full generations only).

    The worker marks two kinds of timed window, in `window_kinds` order: `prefill` (generate
    with max_new_tokens=1: a forward over the prompt and one token) and `generate` (full
    generations). Per-window tuples follow the same order."""

    max_new_tokens: int
    window_kinds: tuple[str, ...]
    sequences: tuple[int, ...]  # prompts completed per window
    prompt_tokens: tuple[int, ...]  # prompt tokens fed per window (padding not counted)
    output_tokens: tuple[int, ...]  # tokens generated per window (up to and with EOS)
    ttft_ms: tuple[float, ...]  # per generate call: call start to its first new token
    tpot_ms: tuple[float, ...]  # per decode step: time between successive new tokens
    prefill_latencies_ms: tuple[float, ...] = ()
    decode_ms: tuple[float, ...] = ()  # per full generate call: first new token to call end
    fixed_length: bool = False  # every prompt made exactly max_new_tokens (EOS suppressed)
    prompt_ids: tuple[int, ...] = ()  # one pass over the prompt set, in the order fed
    passes: tuple[int, ...] = ()  # whole passes over prompt_ids per window

    def details(self) -> dict[str, Any]:
        """result.json's `generation`: the prompts each window held (`passes` whole passes over
        `prompt_ids`), and what it fed and made."""
        return {
            "max_new_tokens": self.max_new_tokens,
            "fixed_length": self.fixed_length,
            "prompt_ids": list(self.prompt_ids),
            "windows": [
                {"kind": kind, "passes": passes, "sequences": sequences,
                 "prompt_tokens": prompt, "output_tokens": output}
                for kind, passes, sequences, prompt, output in zip(
                    self.window_kinds, self.passes, self.sequences, self.prompt_tokens,
                    self.output_tokens, strict=False)
            ],
        }


def compact_ids(ids: Sequence[int]) -> str:
    """Distinct ids as runs of consecutive ones: (0, 1, 2, 3, 7, 0) → `0-3 7`."""
    ordered = sorted(set(ids))
    runs: list[list[int]] = []
    for i in ordered:
        if runs and i == runs[-1][1] + 1:
            runs[-1][1] = i
        else:
            runs.append([i, i])
    return " ".join(str(a) if a == b else f"{a}-{b}" for a, b in runs)


@dataclass(frozen=True)
class GenerationFigures:
    """A generate run's per-token figures (the generation columns of its RunRecord)."""

    prompt_tokens: float
    output_tokens: float
    energy_j_per_output_token: float | None
    energy_j_per_output_token_ci95: float | None
    energy_j_per_prompt_token: float | None
    energy_j_per_prompt_token_ci95: float | None
    prefill_energy_j_per_inference: float | None
    prefill_energy_j_per_inference_ci95: float | None
    decode_energy_j_per_inference: float | None
    decode_energy_j_per_inference_ci95: float | None
    decode_energy_j_per_output_token: float | None
    decode_energy_j_per_output_token_ci95: float | None
    e2e_tokens_per_s: float | None
    ttft_ms_p50: float | None
    tpot_ms_p50: float | None
    tpot_ms_p95: float | None
    fixed_length: bool
    prompt_ids: str  # compact_ids of the prompts every window held
    decode_tokens_per_s: float | None
    ttft_ms_p50_ci95: float | None
    tpot_ms_p50_ci95: float | None
    prefill_latency_ms_p50: float | None
    prefill_latency_ms_p50_ci95: float | None
    prefill_latency_ms_mean: float | None
    prefill_latency_ms_mean_ci95: float | None

    def columns(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class EnergyUncertainty:
    """The parts of energy per inference's 95 % interval, each in % of the figure
    (core.measure.uncertainty says what each part is)."""

    spread_pct: float | None  # None for a single window: no interval
    counter_pct: float
    edges_pct: float
    integration_pct: float
    idle_pct: float | None  # of dynamic energy per inference (None where that is not above 0)
    model_pct: float

    @property
    def combined_pct(self) -> float | None:
        """Root sum of squares of spread, counter, edges and integration."""
        if self.spread_pct is None:
            return None
        return math.hypot(self.spread_pct, self.counter_pct, self.edges_pct,
                          self.integration_pct)

    def text(self) -> str:
        """`±3.1 % = spread 2.9, counter 0.8, edges 0.6, integration 0.4; idle 0.4 (dynamic
        energy), model 30 (stated, not combined)`: the parts that are there."""
        combined = self.combined_pct
        if combined is None:
            return ""
        parts = [("spread", self.spread_pct), ("counter", self.counter_pct),
                 ("edges", self.edges_pct), ("integration", self.integration_pct)]
        shown = ", ".join(f"{name} {_pct(value)}" for name, value in parts if value)
        out = f"±{_pct(combined)} % = {shown or 'spread 0'}"
        extra = []
        if self.idle_pct:
            extra.append(f"idle {_pct(self.idle_pct)} (dynamic energy)")
        if self.model_pct:
            extra.append(f"model {_pct(self.model_pct)} (stated, not combined)")
        return out + ("; " + ", ".join(extra) if extra else "")


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.2g}" if value < 1 else f"{value:.1f}"


@dataclass(frozen=True)
class WindowEnergy:
    """One timed window as the runner measured it: energy per sensor between its edges."""

    duration_s: float
    energy_j: dict[str, float]  # per sensor name
    other_cpu_load_pct: float = 0.0
    worker_cpu_s: float = 0.0
    faults: dict[str, str] = field(default_factory=dict)  # sensor name -> what went wrong
    disturbed: str = ""  # why the window does not count (a sampler gap, another GPU process...)


@dataclass(frozen=True)
class SensorFigures:
    """One sensor's share of a run (result.json `per_sensor`)."""

    measured: bool
    method: str
    energy_j_per_inference: float
    avg_power_w: float
    idle_power_w: float | None


@dataclass(frozen=True)
class RepeatFigures:
    """One timed window's figures (result.json `repeats`)."""

    energy_j_per_inference: float
    inferences: int
    duration_s: float
    energy_j: dict[str, float]
    other_cpu_load_pct: float


@dataclass(frozen=True)
class RunFigures:
    """What the samples say about a run: energy, power, latency, with intervals and warnings."""

    energy_j_per_inference: float
    energy_j_per_inference_ci95: float | None
    dynamic_energy_j_per_inference: float
    avg_power_w: float
    avg_power_w_ci95: float | None
    idle_power_w: float
    latency_ms_p50: float
    latency_ms_p50_ci95: float | None
    latency_ms_p95: float
    throughput_per_s: float
    co2e_g_per_1k_inferences: float
    energy_source: EnergySource
    energy_fault: str
    sensors: tuple[str, ...]
    other_cpu_load_pct: float
    per_sensor: dict[str, SensorFigures]
    per_repeat: tuple[RepeatFigures, ...]
    warnings: tuple[str, ...]
    generation: GenerationFigures | None = None  # generate runs
    training: TrainingFigures | None = None  # runs that trained
    windows_dropped: int = 0  # disturbed windows left out (others were measured in their place)
    disturbed: str = ""  # why windows that stayed in were disturbed ('' when none was)
    uncertainty: EnergyUncertainty | None = None  # energy_j_per_inference_ci95's parts
    energy_uncertainty: str = ""  # the parts in words (EnergyUncertainty.text)

    def columns(self) -> dict[str, Any]:
        """The runs.csv columns these figures fill (every field RunRecord shares but warnings,
        which the runner merges with the worker's; the generation columns of generate runs)."""
        out = {name: getattr(self, name) for name in _FIGURE_COLUMNS}
        if self.generation is not None:
            out.update(self.generation.columns())
        if self.training is not None:
            out.update(self.training.columns())
        return out


_FIGURE_COLUMNS = tuple(
    f.name for f in dataclasses.fields(RunFigures) if f.name in RUN_COLUMNS and f.name != "warnings"
)

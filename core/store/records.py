"""The typed record of a run, from the worker's pipe to runs.csv and every view.

    WorkerResult   what a worker sends back (timings, latencies, size, quality): core/figures.py
    RunFigures     what the runner computes from the sensors' samples: core/figures.py
    RunRecord      one row of runs.csv (here): its fields ARE the columns, units in the names

The live table, `report`, the results screen and docs/results.md's column table all read RunRecord's
fields, so a column is added in one place. A misspelt field is a TypeError, never a silent drop.
Lightweight on purpose: the UI imports this module.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from typing import Any, Literal

RunStatus = Literal["finished", "skipped", "failed"]
EnergySource = Literal["measured", "estimated", "mixed", "faulty"]
LIST_SEPARATOR = ";"


def column(doc: str, default: Any = None) -> Any:
    """A RunRecord field: a runs.csv column with its one-line description (`dataclasses.MISSING`
    as the default makes it required)."""
    return field(default=default, metadata={"doc": doc})


def model_label(model: str) -> str:
    """Short model name for tables: `demo/tiny-bert` → tiny-bert, `/data/ckpt/bert-ft/` →
    bert-ft; hub ids (`org/name`) stay whole, they are what the user typed."""
    if model.startswith("demo/"):
        return model.removeprefix("demo/")
    if model.startswith(("/", "./", "../", "~")) or model.count("/") > 1:
        return model.rstrip("/").rsplit("/", 1)[-1] or model
    return model


def input_label(batch_size: int, seq_len: int | None, resolution: int | None,
                max_new_tokens: int | None = None) -> str:
    """b1-s128 for text, b8-r224 for images, b1-s64-n32 for generation (up to 32 new tokens):
    how runs, ids and tables name an input size."""
    size = f"s{seq_len}" if seq_len is not None else f"r{resolution}"
    new = f"-n{max_new_tokens}" if max_new_tokens is not None else ""
    return f"b{batch_size}-{size}{new}"


@dataclass(frozen=True)
class RunRecord:
    """One run as runs.csv holds it (one row per ended run)."""

    run_id: str = column("stable id of the run: model, technique and input size",
                         dataclasses.MISSING)
    model: str = column("the model as the profile names it (demo/…, hub id, folder)", "")
    task: str | None = column(
        "text-classification, causal-lm, image-classification or object-detection")
    technique: str = column("technique or chain (`a+b`), with its parameters", "")
    device: str = column("where it ran: cpu, cuda:N (as resolved by the worker)", "")
    runtime: str = column(
        "what ran the timed windows: torch, or onnxruntime (CPU execution provider) for the "
        "onnx-* techniques", "")
    batch_size: int = column("inputs per forward pass", 1)
    seq_len: int | None = column("tokens per input (text models)")
    resolution: int | None = column("pixels per side (image models)")
    status: RunStatus = column("finished, skipped or failed", "finished")
    reason: str = column("why a run was skipped or failed", "")
    iterations: int | None = column(
        "calls per timed window (median over repeats): infer, one batched forward pass; "
        "generate, one whole generate call of a batch of prompts (full-generation windows); "
        "train, one optimizer step")
    repeats: int | None = column("timed windows")
    energy_j_per_inference: float | None = column(
        "energy per input item: window energy ÷ (iterations × batch size), median of repeats "
        "(generate: one prompt's whole generation, prefill included; train: one training "
        "sample)")
    energy_j_per_inference_ci95: float | None = column(
        "half-width of the 95 % interval of energy_j_per_inference: the repeats' spread (Student "
        "t) combined with the sensors' own error (energy_uncertainty)")
    dynamic_energy_j_per_inference: float | None = column(
        "energy per inference above the idle baseline")
    avg_power_w: float | None = column("mean power over the timed windows (median of repeats)")
    avg_power_w_ci95: float | None = column("half-width of the 95 % interval of avg_power_w")
    idle_power_w: float | None = column("idle power of the sensors charged to the run")
    latency_ms_p50: float | None = column(
        "median latency of one call (see iterations): a batched forward pass, a whole generate "
        "call (prefill and every new token), an optimizer step")
    latency_ms_p50_ci95: float | None = column(
        "half-width of the 95 % interval of latency_ms_p50 (order statistics of all iterations)")
    latency_ms_p95: float | None = column("95th percentile latency of one call (as p50)")
    throughput_per_s: float | None = column(
        "inferences per second over the timed windows (generate: prompts completed per second; "
        "tokens per second are e2e_tokens_per_s and decode_tokens_per_s)")
    energy_delay_j_s: float | None = column(
        "energy-delay product: energy_j_per_inference × latency_ms_p50 in seconds")
    workload: str = column("infer (forward passes), generate (text generation from prompts) or "
                           "train (optimizer steps; one inference = one training sample)",
                           "infer")
    max_new_tokens: int | None = column("generate runs: most tokens generated per prompt")
    prompt_tokens: float | None = column(
        "generate runs: mean prompt length in tokens over the prompts fed (every window holds "
        "whole passes over the same prompts: prompt_ids)")
    output_tokens: float | None = column(
        "generate runs: mean output tokens per prompt, i.e. tokens actually generated (a stop at "
        "EOS counts the tokens made, not max_new_tokens; with fixed_length it is max_new_tokens)")
    energy_j_per_output_token: float | None = column(
        "generate runs: energy of full generations ÷ output tokens, median of repeats. Every "
        "*_per_output_token column divides by all tokens generated, each prompt's first included")
    energy_j_per_output_token_ci95: float | None = column(
        "half-width of the 95 % interval of energy_j_per_output_token")
    energy_j_per_prompt_token: float | None = column(
        "generate runs: prefill energy (windows of generate with max_new_tokens=1) ÷ prompt "
        "tokens, median of repeats")
    energy_j_per_prompt_token_ci95: float | None = column(
        "half-width of the 95 % interval of energy_j_per_prompt_token")
    prefill_energy_j_per_inference: float | None = column(
        "generate runs: prefill's share of one prompt's generation (prompt tokens × "
        "energy_j_per_prompt_token)")
    prefill_energy_j_per_inference_ci95: float | None = column(
        "half-width of the 95 % interval of prefill_energy_j_per_inference")
    decode_energy_j_per_inference: float | None = column(
        "generate runs: full generation minus prefill, per prompt (optimum-benchmark's method)")
    decode_energy_j_per_inference_ci95: float | None = column(
        "half-width of the 95 % interval of decode_energy_j_per_inference: the intervals of "
        "full and prefill added in quadrature")
    decode_energy_j_per_output_token: float | None = column(
        "generate runs: decode energy ÷ output tokens (all of them, as energy_j_per_output_token: "
        "prefill's share per output token + this = energy_j_per_output_token)")
    decode_energy_j_per_output_token_ci95: float | None = column(
        "half-width of the 95 % interval of decode_energy_j_per_output_token (quadrature)")
    e2e_tokens_per_s: float | None = column(
        "generate runs: end-to-end rate, output tokens ÷ the full-generation windows' time "
        "(prefill included)")
    ttft_ms_p50: float | None = column(
        "generate runs: median time to first token (call start to first new token)")
    tpot_ms_p50: float | None = column(
        "generate runs: median time per output token, i.e. per decode step: the time between "
        "successive new tokens (the first token's time is ttft)")
    tpot_ms_p95: float | None = column("generate runs: 95th percentile time per output token")
    train_steps: int | None = column(
        "optimizer steps of the whole fine-tune: a train run's (warm-up included), or those a "
        "training technique (finetune, qat) took while its variant was prepared (trained once "
        "per variant: every input size of the variant carries the same training figures)")
    energy_j_per_step: float | None = column(
        "energy of one optimizer step: window energy ÷ steps in it, median of the windows")
    energy_j_per_step_ci95: float | None = column(
        "half-width of the 95 % interval of energy_j_per_step (Student t over the windows)")
    train_energy_j: float | None = column(
        "energy of the whole fine-tune: energy_j_per_step × train_steps")
    train_energy_j_ci95: float | None = column(
        "half-width of the 95 % interval of train_energy_j (energy_j_per_step's, × train_steps)")
    train_samples_per_s: float | None = column("training samples per second over the windows")
    train_loss_start: float | None = column(
        "loss on the held-out batches before the first optimizer step")
    train_loss_end: float | None = column("loss on the held-out batches after the last step")
    untrained_technique: str = column(
        "runs that train: the same technique without training (finetune dropped, qat as "
        "static-int8), the post-training variant it is compared with", "")
    saved_model: str = column(
        "with save_models: the folder the run's model was saved in (relative to the session)", "")
    saved_model_bytes: int | None = column("bytes of the saved model's files")
    flops_per_inference: float | None = column(
        "floating-point operations per input item (torch flop counter)")
    size_bytes: int | None = column("bytes of the serialised state dict (or ONNX file)")
    params: int | None = column("parameters, quantized ones included")
    nonzero_params: int | None = column("parameters that are not zero (pruning)")
    peak_mem_mb: float | None = column("peak memory: CUDA allocations, else the worker's RSS")
    quality_metric: str | None = column(
        "accuracy, perplexity, prompt_perplexity (generate runs: perplexity of the prompts' own "
        "tokens, not of a text), or the fidelity figure of the task without a dataset")
    quality_value: float | None = column("value of quality_metric")
    quality_value_ci95: float | None = column(
        "half-width of the 95 % interval of quality_value where known (perplexity: bootstrap "
        "over the sequences)")
    quality_macro_f1: float | None = column("macro-F1 (classifiers with a dataset)")
    fidelity_top1: float | None = column(
        "agreement of top-1 (or next-token) predictions with the uncompressed model")
    fidelity_kl: float | None = column("mean KL(uncompressed ‖ this run), nats")
    fidelity_cosine: float | None = column("cosine similarity of outputs to the uncompressed ones")
    fidelity_exact_match: float | None = column(
        "generate runs: share of prompts whose greedy output equals the uncompressed model's")
    fidelity_token_agreement: float | None = column(
        "generate runs: greedy output tokens equal to the uncompressed model's at the same "
        "position ÷ the longer of the two")
    fidelity_chrf: float | None = column(
        "generate runs: chrF (0–100) of the greedy output text against the uncompressed model's")
    quality_pass_at_1: float | None = column(
        "generate runs with `pass_at_1: true`: share of tasks whose greedy completion passes its "
        "tests in the sandbox (a timeout counts as failed)")
    quality_pass_at_1_tasks: int | None = column("tasks quality_pass_at_1 covers")
    quality_map: float | None = column(
        "object detection with a COCO dataset: mAP@[.5:.95] against its boxes (pycocotools)")
    quality_map_50: float | None = column("object detection: mAP at IoU 0.5")
    quality_map_small: float | None = column(
        "object detection: mAP@[.5:.95] of boxes under 32² px (empty: none in the dataset)")
    quality_map_medium: float | None = column(
        "object detection: mAP@[.5:.95] of boxes of 32² to 96² px")
    quality_map_large: float | None = column(
        "object detection: mAP@[.5:.95] of boxes over 96² px")
    fidelity_map: float | None = column(
        "object detection: mAP@[.5:.95] of the detections against the uncompressed model's "
        "(1.0 = the same boxes)")
    detections_per_image: float | None = column(
        "object detection: mean boxes kept per image (after score threshold and NMS)")
    quality_samples: int | None = column("inputs the quality figures cover")
    quality_seconds: float | None = column("time the quality evaluation took")
    co2e_g_per_1k_inferences: float | None = column(
        "grams CO2e per 1000 inferences at the session's grid intensity")
    energy_source: EnergySource | None = column(
        "measured, estimated, mixed (both) or faulty (a sensor failed or its counter stood still)")
    energy_fault: str = column("what went wrong with a sensor during the windows, if anything", "")
    sensors: tuple[str, ...] = column("sensors the run is charged with (`;`-separated)", ())
    other_cpu_load_pct: float | None = column(
        "CPU load of other processes during the windows, % of all cores")
    node: str = column("host the run was measured on (a Ray node's hostname in --ray sessions)",
                       "")
    gpu_index: int | None = column("NVML index of the GPU the run was pinned to (--gpus, --ray)")
    gpu_name: str | None = column("that GPU's model as NVML names it (at the run's start)")
    gpu_driver: str | None = column("NVIDIA driver version of the run's node")
    gpu_power_limit_w: float | None = column("the GPU's enforced power limit at the run's start")
    gpu_sm_clock_mhz: int | None = column("the GPU's SM clock at the run's start")
    gpu_temperature_c: float | None = column("the GPU's temperature at the run's start")
    cpu_energy_shared: bool = column(
        "other runs on the same box overlapped this one: its CPU/DRAM energy is the box's over "
        "the windows (shared, divided by nothing), not this run's alone", False)
    warnings: tuple[str, ...] = column("warnings about the figures (`;`-separated)", ())
    variant_cache_hit: bool | None = column(
        "the compressed model came from the variant cache (protocol.variant_cache), not "
        "compressed in this run's worker")
    precision: str = column(
        "with protocol.target_ci_pct: converged (the energy-per-inference and median-latency "
        "intervals reached the target) or budget (protocol.max_run_s was spent first)", "")
    windows_dropped: int | None = column(
        "disturbed timed windows left out of the figures (others measured in their place)")
    disturbed: str = column(
        "why windows that stayed in the figures were disturbed (a sampler gap, another process "
        "on the run's GPU, the GPU throttling): measured again until the budget ran out", "")
    fixed_length: bool | None = column(
        "generate runs: the timed windows made exactly max_new_tokens per prompt (EOS "
        "suppressed until then; `generation: {fixed_length: false}` lets each stop at its EOS). "
        "Fidelity and pass@1 always use the natural, EOS-stopped output")
    prompt_ids: str = column(
        "generate runs: the prompts every timed window held, as positions in the prompt set "
        "(after max_samples), `0-15`; each window holds whole passes over them (result.json "
        "`generation` has the passes per window)", "")
    decode_tokens_per_s: float | None = column(
        "generate runs: decode rate, output tokens after each prompt's first ÷ the time from a "
        "call's first new token to its end")
    ttft_ms_p50_ci95: float | None = column(
        "half-width of the 95 % interval of ttft_ms_p50 (order statistics of all calls)")
    tpot_ms_p50_ci95: float | None = column(
        "half-width of the 95 % interval of tpot_ms_p50 (order statistics of all decode steps)")
    prefill_latency_ms_p50: float | None = column(
        "generate runs: median latency of a prefill call (generate with max_new_tokens=1: the "
        "prompt's forward pass and its first token)")
    prefill_latency_ms_p50_ci95: float | None = column(
        "half-width of the 95 % interval of prefill_latency_ms_p50 (order statistics)")
    prefill_latency_ms_mean: float | None = column(
        "generate runs: mean latency of a prefill call")
    prefill_latency_ms_mean_ci95: float | None = column(
        "half-width of the 95 % interval of prefill_latency_ms_mean (Student t over calls)")
    energy_uncertainty: str = column(
        "energy_j_per_inference_ci95 in parts, % of the figure (root sum of squares of spread, "
        "counter, edges, integration; idle and model stated beside it): see docs/method.md", "")

    @property
    def model_label(self) -> str:
        """The model as a table shows it: demo models without `demo/`, folders by their name."""
        return model_label(self.model)

    @property
    def input_size(self) -> str:
        return input_label(self.batch_size, self.seq_len, self.resolution, self.max_new_tokens)

    @property
    def finished(self) -> bool:
        return self.status == "finished"

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: tuples become lists."""
        return {k: list(v) if isinstance(v, tuple) else v
                for k, v in dataclasses.asdict(self).items()}

    def csv_cells(self) -> list[str]:
        return [csv_cell(getattr(self, name)) for name in RUN_COLUMNS]

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunRecord:
        """From a JSON object or a runs.csv row (text cells parsed by the field's type).

        Keys this version does not know (a newer writer) are ignored; missing ones take the
        default, so sessions written by an older version still read."""
        return cls(**{name: _parse(value, _FIELD_TYPES[name])
                      for name, value in data.items() if name in _FIELD_TYPES})


RUN_COLUMNS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(RunRecord))
COLUMN_DOCS: dict[str, str] = {f.name: f.metadata["doc"] for f in dataclasses.fields(RunRecord)}
_FIELD_TYPES: dict[str, Any] = typing.get_type_hints(RunRecord)
NUMERIC_COLUMNS: tuple[str, ...] = tuple(
    name for name, kind in _FIELD_TYPES.items()
    if {int, float} & {kind, *typing.get_args(kind)}
)


def columns_markdown() -> str:
    """docs/results.md's runs.csv column table (tests/test_records.py keeps the two equal)."""
    lines = ["| column | meaning |", "|---|---|"]
    lines += [f"| `{name}` | {doc} |" for name, doc in COLUMN_DOCS.items()]
    return "\n".join(lines)


def csv_cell(value: Any) -> str:
    """How a runs.csv cell reads: empty for none, 6 significant digits, lists joined by ';'."""
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, (list, tuple)):
        return LIST_SEPARATOR.join(map(str, value))
    return str(value)


def _parse(value: Any, annotation: Any) -> Any:
    """A JSON value or CSV text as the annotated type (int, float, str, tuple[str, ...])."""
    args = typing.get_args(annotation)
    optional = type(None) in args
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        annotation = next(a for a in args if a is not type(None))
    if annotation is bool and not optional:
        return value is True or str(value).lower() == "true"
    if value is None or (value == "" and (optional or annotation is not str)):
        if optional:
            return None
        return () if typing.get_origin(annotation) is tuple else ""
    origin = typing.get_origin(annotation)
    if origin is tuple:
        if isinstance(value, str):
            return tuple(v for v in value.split(LIST_SEPARATOR) if v)
        return tuple(str(v) for v in value)
    if origin is Literal:
        return str(value)
    if annotation is bool:
        return value if isinstance(value, bool) else str(value).strip().lower() == "true"
    if annotation is int:
        return int(float(value)) if isinstance(value, str) else int(value)
    if annotation is float:
        return float(value)
    return str(value)

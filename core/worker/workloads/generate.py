"""The `generate` workload: text generation from a prompt set, prefill and decode measured apart.

Before compressing, each run prepares its prompts and the uncompressed model's greedy outputs;
after the windows, fidelity (and pass@1 where asked) per run.

A repeat is two timed windows, each marked with start/end edges the runner measures like any
other: a *prefill* window (generate with max_new_tokens=1: a forward over the prompt and one
token) and a *full* window (generate with the run's max_new_tokens). Decode energy is full minus
prefill (core.measure.energy.generation_figures). Every call of a window takes the next batch of
prompts, cycling through the prompt set, each window from the first; batches are always full (the
prompt list wraps round). A window ends only after whole passes over the prompt set, so every
variant of a model, fast or slow, is measured on the same prompts in the same proportions.

With `generation.fixed_length` (the default) the windows make exactly max_new_tokens per prompt:
EOS cannot end a row early, so every variant is charged for the same tokens.

TTFT and TPOT come from a streamer that stamps each new token as generate hands it over (on CUDA,
greedy generate synchronises every step to check for EOS, so the stamps follow the device).
Output tokens are counted per row up to and with the first EOS: a generation that stops early is
charged for the tokens it made.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from energy_console.core.compression import TechniqueContext
from energy_console.core.models.base import NotApplicable
from energy_console.core.quality.prompts import PromptBatch, PromptSet, generate, tokens_made
from energy_console.core.spec.workloads import GenerationSettings, Workload
from energy_console.core.store.figures import GenerationTimings, WorkerResult
from energy_console.core.worker.variant import (
    Mark,
    Variant,
    VariantStart,
    compressed,
    inference_autograd,
    prepared_for,
    run_marks,
    worker_result,
)
from energy_console.core.worker.windows import (
    REPEAT_PHASE,
    Iteration,
    MeasuredWindows,
    measure_windows,
)

PREFILL_PHASE = "prefill"
# GenerationTimings.window_kinds, by the phase of the window
WINDOW_KINDS = {PREFILL_PHASE: "prefill", REPEAT_PHASE: "generate"}


@dataclass(frozen=True)
class PreparedGenerate:
    prompts: PromptSet
    prompt_batches: list[PromptBatch]
    reference: Any  # quality.generation.GenerationReference
    settings: GenerationSettings  # the variant's
    code_tasks: Any  # the variant's pass@1 tasks, or None


class _TokenClock:
    """A transformers streamer that stamps each put: the prompt first, then each new token."""

    def __init__(self) -> None:
        self.times: list[float] = []

    def put(self, value) -> None:
        self.times.append(time.monotonic())

    def end(self) -> None:
        pass


@dataclass
class _Counts:
    """What the windows of one run fed and made, per window in order, and the token times."""

    sequences: list[int] = field(default_factory=list)
    prompt_tokens: list[int] = field(default_factory=list)
    output_tokens: list[int] = field(default_factory=list)
    ttft_ms: list[float] = field(default_factory=list)
    tpot_ms: list[float] = field(default_factory=list)
    decode_ms: list[float] = field(default_factory=list)


def generation_windows(module, prepared: PreparedGenerate, max_new_tokens: int, device: str,
                       protocol, mark, autograd) -> tuple[MeasuredWindows, GenerationTimings]:
    """`repeats` × (prefill window, full window), what each fed and made, TTFT and TPOT."""
    import torch

    prompts, settings, prompt_batches = prepared.prompts, prepared.settings, prepared.prompt_batches
    torch.manual_seed(settings.seed)
    cursor = [0]
    counts = _Counts()

    def next_batch() -> PromptBatch:
        batch = prompt_batches[cursor[0] % len(prompt_batches)]
        cursor[0] += 1
        return batch

    def window_starts(planned: int) -> None:
        cursor[0] = 0  # every window starts from the first prompts: same mix each repeat
        counts.sequences.append(0)
        counts.prompt_tokens.append(0)
        counts.output_tokens.append(0)

    fixed = max_new_tokens if settings.fixed_length else 0

    def prefill() -> tuple[PromptBatch, Any, None]:
        batch = next_batch()
        return batch, generate(module, batch, 1, prompts, settings,
                               min_new_tokens=min(fixed, 1)), None

    def full() -> tuple[PromptBatch, Any, _TokenClock]:
        batch, clock = next_batch(), _TokenClock()
        return batch, generate(module, batch, max_new_tokens, prompts, settings, clock,
                               min_new_tokens=fixed), clock

    def counted(result: tuple[PromptBatch, Any, _TokenClock | None], t0: float,
                t1: float) -> None:
        batch, new, clock = result
        counts.prompt_tokens[-1] += batch.prompt_tokens
        counts.sequences[-1] += len(batch.rows)
        counts.output_tokens[-1] += sum(tokens_made(new, prompts.eos_ids))
        if clock is not None and len(clock.times) > 1:
            counts.ttft_ms.append((clock.times[1] - t0) * 1000.0)
            counts.decode_ms.append((t1 - clock.times[1]) * 1000.0)
            counts.tpot_ms.extend((b - a) * 1000.0
                                  for a, b in zip(clock.times[1:], clock.times[2:], strict=False))

    calls_per_pass = len(prompt_batches)
    measured = measure_windows(
        [Iteration(prefill, PREFILL_PHASE, counted, window_starts, whole_of=calls_per_pass),
         Iteration(full, REPEAT_PHASE, counted, window_starts, whole_of=calls_per_pass)],
        protocol, device, mark, autograd)
    timings = GenerationTimings(
        max_new_tokens=max_new_tokens,
        window_kinds=tuple(WINDOW_KINDS[w.phase] for w in measured.windows),
        sequences=tuple(counts.sequences), prompt_tokens=tuple(counts.prompt_tokens),
        output_tokens=tuple(counts.output_tokens), ttft_ms=tuple(counts.ttft_ms),
        tpot_ms=tuple(counts.tpot_ms),
        prefill_latencies_ms=tuple(ms for w in measured.of(PREFILL_PHASE)
                                   for ms in w.latencies_ms),
        decode_ms=tuple(counts.decode_ms), fixed_length=settings.fixed_length,
        prompt_ids=tuple(row for batch in prompt_batches for row in batch.rows),
        passes=tuple(w.iterations // calls_per_pass for w in measured.windows),
    )
    return measured, timings


class GenerateWorkload:
    name = "generate"
    serves = Workload.GENERATE
    tasks: frozenset[str] = frozenset()  # a model that cannot generate is refused in prepare

    def prepare(self, start: VariantStart, mark: Mark) -> Variant:
        from energy_console.core.quality.generation import prepare_generation_reference
        from energy_console.core.quality.prompts import batches, prepare_prompts
        from energy_console.core.spec.workloads import GENERATE_TASKS, GenerationSettings

        first, loaded = start.first, start.loaded
        if loaded.task not in GENERATE_TASKS or not hasattr(loaded.module, "generate"):
            what = (f"a {loaded.task} model" if loaded.task not in GENERATE_TASKS
                    else f"a {loaded.task} model without generate() (run by {loaded.runtime})")
            raise NotApplicable(f"{first.model.ref} is {what}: generate runs need a causal LM "
                                "that generates; remove `workload: generate` from this model "
                                "entry")
        settings = first.model.generation or GenerationSettings()
        code_tasks = None
        if settings.pass_at_1:  # checked before any window: a dataset without tests fails fast
            from energy_console.core.quality.datasets import dataset_spec, load_code_tasks

            code_tasks = load_code_tasks(dataset_spec(first.model.dataset, first.model.base_dir))
        prepared: dict[str, Any] = {}
        for spec in start.runs:
            mark("reference", spec.run_id)
            try:
                prompts = prepare_prompts(loaded, spec, settings)
                prompt_batches = batches(prompts, spec.batch_size, start.device)
                reference = prepare_generation_reference(loaded, spec, prompt_batches, prompts,
                                                         start.cache_dir)
                prepared[spec.run_id] = PreparedGenerate(prompts, prompt_batches, reference,
                                                         settings, code_tasks)
            except Exception as exc:  # this run fails alone, at its turn
                prepared[spec.run_id] = exc
        calibration = next((p.prompt_batches for p in prepared.values()
                            if isinstance(p, PreparedGenerate)), None)
        if calibration is None:  # every run failed to prepare: the first says why
            raise prepared[first.run_id]
        ctx = TechniqueContext(
            device=start.device, task=loaded.task, loaded=loaded,
            calibration_inputs=lambda: [b.inputs for b in calibration[:4]], workload="generate",
        )
        variant = compressed(start, ctx, prepared, mark)
        if not hasattr(variant.module, "generate"):
            raise NotApplicable(f"{first.technique.slug} turns the model into a module without "
                                "generate(); it cannot run generate workloads")
        return variant

    def measure(self, variant: Variant, spec, mark: Mark) -> WorkerResult:
        from energy_console.core.quality.eval_set import text_tokenizer
        from energy_console.core.quality.generation import evaluate_generation

        started_t = time.monotonic()
        prepared = prepared_for(variant, spec)
        module = variant.module
        measured, timings = generation_windows(
            module, prepared, spec.max_new_tokens, variant.device, spec.protocol,
            run_marks(mark, spec.run_id), inference_autograd(variant))

        mark("quality", spec.run_id)  # after the windows: pass@1's subprocesses never run in one
        quality_result = evaluate_generation(
            variant.loaded, module, prepared.reference, prepared.prompt_batches,
            prepared.prompts, spec.max_new_tokens, text_tokenizer(variant.loaded, spec.model),
            prepared.code_tasks, prepared.settings.pass_at_1_timeout_s)
        return worker_result(
            variant, measured, REPEAT_PHASE, quality_result, spec, started_t,
            reference=prepared.reference, warnings=tuple(prepared.prompts.warnings),
            generation=timings,
        )


WORKLOAD = GenerateWorkload()

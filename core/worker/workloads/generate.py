"""Generate runs of one variant: prompts and the uncompressed model's greedy outputs per run
before compressing, then prefill and full-generation windows (core.generate) and fidelity per run.
The same shape as core.variant's infer path."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from energy_console.core.compression import TechniqueContext
from energy_console.core.models.base import NotApplicable
from energy_console.core.store.figures import WorkerResult
from energy_console.core.worker.variant import (
    Mark,
    Variant,
    compressed,
    prepared_for,
    timed_windows,
    worker_result,
)
from energy_console.core.worker.variant_cache import VariantCache


@dataclass(frozen=True)
class PreparedGenerate:
    prompts: Any  # generate.PromptSet
    prompt_batches: list[Any]  # generate.PromptBatch
    reference: Any  # quality.generation.GenerationReference


def prepare_generate(runs, loaded, device: str, load_s: float, cache_dir: Path, mark: Mark,
                     variant_cache: VariantCache | None) -> Variant:
    from energy_console.core.quality.generation import prepare_generation_reference
    from energy_console.core.quality.prompts import batches, prepare_prompts
    from energy_console.core.spec.workloads import GENERATE_TASKS, GenerationSettings

    first = runs[0]
    if loaded.task not in GENERATE_TASKS or not hasattr(loaded.module, "generate"):
        raise NotApplicable(f"{first.model.ref} is a {loaded.task} model: generate runs need a "
                            "causal LM; remove `workload: generate` from this model entry")
    settings = first.model.generation or GenerationSettings()
    code_tasks = None
    if settings.pass_at_1:  # checked before any window: a dataset without tests fails fast
        from energy_console.core.quality.datasets import dataset_spec, load_code_tasks

        code_tasks = load_code_tasks(dataset_spec(first.model.dataset, first.model.base_dir))
    prepared: dict[str, Any] = {}
    for spec in runs:
        mark("reference", spec.run_id)
        try:
            prompts = prepare_prompts(loaded, spec, settings)
            prompt_batches = batches(prompts, spec.batch_size, device)
            reference = prepare_generation_reference(loaded, spec, prompt_batches, prompts,
                                                     cache_dir)
            prepared[spec.run_id] = PreparedGenerate(prompts, prompt_batches, reference)
        except Exception as exc:  # this run fails alone, at its turn
            prepared[spec.run_id] = exc
    calibration = next((p.prompt_batches for p in prepared.values()
                        if isinstance(p, PreparedGenerate)), None)
    if calibration is None:  # every run failed to prepare: the first says why
        raise prepared[first.run_id]
    ctx = TechniqueContext(
        device=device, task=loaded.task, loaded=loaded,
        calibration_inputs=lambda: [b.inputs for b in calibration[:4]],
    )
    variant = compressed(runs, loaded, ctx, load_s, prepared, mark, variant_cache, "generate")
    if not hasattr(variant.module, "generate"):
        raise NotApplicable(f"{first.technique.slug} turns the model into a module without "
                            "generate(); it cannot run generate workloads")
    variant.extra.update(settings=settings, code_tasks=code_tasks)
    return variant


def measure_generate(variant: Variant, spec, mark: Mark) -> WorkerResult:
    from energy_console.core.quality.eval_set import text_tokenizer
    from energy_console.core.quality.generation import evaluate_generation
    from energy_console.core.worker.generate_loop import run_generate_protocol

    started_t = time.monotonic()
    prepared = prepared_for(variant, spec)
    settings, module = variant.extra["settings"], variant.module
    measured, peak_mem_mb = timed_windows(
        variant, spec, mark, run_generate_protocol, module, prepared.prompt_batches,
        prepared.prompts, settings, spec.max_new_tokens)

    mark("quality", spec.run_id)  # after the windows: pass@1's subprocesses never run inside one
    quality_result = evaluate_generation(
        variant.loaded, module, prepared.reference, prepared.prompt_batches, prepared.prompts,
        spec.max_new_tokens, text_tokenizer(variant.loaded, spec.model),
        variant.extra["code_tasks"], settings.pass_at_1_timeout_s)
    return worker_result(
        variant, measured, quality_result, spec, started_t, peak_mem_mb=peak_mem_mb,
        reference=prepared.reference, warnings=tuple(prepared.prompts.warnings),
        generation=measured.timings,
    )

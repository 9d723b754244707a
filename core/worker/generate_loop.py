"""The `generate` workload, worker side: prompts, the timed loop, and what it counted.

A repeat is two timed windows, each marked with start/end edges the runner measures like any
other: a *prefill* window (generate with max_new_tokens=1: a forward over the prompt and one
token) and a *full* window (generate with the run's max_new_tokens). Decode energy is full minus
prefill (core.energy.generation_figures). Every call of a window takes the next batch of prompts,
cycling through the prompt set; batches are always full (the prompt list wraps round).

TTFT and TPOT come from a streamer that stamps each new token as generate hands it over (on CUDA,
greedy generate synchronises every step to check for EOS, so the stamps follow the device).
Output tokens are counted per row up to and with the first EOS: a generation that stops early is
charged for the tokens it made.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from energy_console.core.quality.prompts import (
    PromptBatch,
    PromptSet,
    generate,
    tokens_made,
)
from energy_console.core.spec.workloads import GenerationSettings
from energy_console.core.store.figures import GenerationTimings
from energy_console.core.worker.windows import calibrate_iterations


class _TokenClock:
    """A transformers streamer that stamps each put: the prompt first, then each new token."""

    def __init__(self) -> None:
        self.times: list[float] = []

    def put(self, value) -> None:
        self.times.append(time.monotonic())

    def end(self) -> None:
        pass


@dataclass
class GenerateMeasured:
    iterations: list[int]  # generate calls per full window
    latencies_ms: list[list[float]]  # per full window, per call
    first_warmup_t: float | None
    timings: GenerationTimings


def run_generate_protocol(
    module,
    prompt_batches: list[PromptBatch],
    prompts: PromptSet,
    settings: GenerationSettings,
    max_new_tokens: int,
    sync: Callable[[], None],
    *,
    warmup: int,
    repeats: int,
    min_window_s: float,
    iterations: int | None,
    mark: Callable[..., None],
) -> GenerateMeasured:
    """Warm up, calibrate, then `repeats` × (prefill window, full window), each marked."""
    import torch

    torch.manual_seed(settings.seed)
    cursor = [0]

    def next_batch() -> PromptBatch:
        batch = prompt_batches[cursor[0] % len(prompt_batches)]
        cursor[0] += 1
        return batch

    mark("warmup")
    first_warmup_t = time.monotonic()
    full_s: list[float] = []
    prefill_s: list[float] = []
    for _ in range(max(1, warmup)):
        for steps, seconds in ((max_new_tokens, full_s), (1, prefill_s)):
            t0 = time.monotonic()
            generate(module, next_batch(), steps, prompts, settings)
            sync()
            seconds.append(time.monotonic() - t0)

    def typical(values: list[float]) -> float:
        steady = values[1:] or values
        return sorted(steady)[len(steady) // 2]

    n_full = iterations or calibrate_iterations(typical(full_s), min_window_s)
    n_prefill = iterations or calibrate_iterations(typical(prefill_s), min_window_s)
    mark("ready")  # the runner has finished the previous run: no window overlaps its work

    kinds: list[str] = []
    sequences: list[int] = []
    prompt_tokens: list[int] = []
    output_tokens: list[int] = []
    ttft_ms: list[float] = []
    tpot_ms: list[float] = []
    prefill_latencies: list[float] = []
    full_latencies: list[list[float]] = []
    for repeat in range(1, repeats + 1):
        for kind, phase, steps, n in (("prefill", "prefill", 1, n_prefill),
                                      ("generate", "repeat", max_new_tokens, n_full)):
            cursor[0] = 0  # every window starts from the first prompts: same mix each repeat
            sync()
            start = time.monotonic()
            mark(phase, repeat=repeat, repeats=repeats, iterations=n, edge="start", t=start)
            calls: list[float] = []
            fed = made = rows = 0
            t1 = start
            while len(calls) < n or (iterations is None and t1 - start < min_window_s):
                batch = next_batch()
                clock = _TokenClock() if kind == "generate" else None
                t0 = time.monotonic()
                new = generate(module, batch, steps, prompts, settings, clock)
                sync()
                t1 = time.monotonic()
                calls.append((t1 - t0) * 1000.0)
                fed += batch.prompt_tokens
                rows += len(batch.rows)
                made += sum(tokens_made(new, prompts.eos_ids))
                if clock is not None and len(clock.times) > 1:
                    ttft_ms.append((clock.times[1] - t0) * 1000.0)
                    tpot_ms += [(b - a) * 1000.0 for a, b in zip(clock.times[1:],
                                                                 clock.times[2:], strict=False)]
            mark(phase, repeat=repeat, repeats=repeats, iterations=len(calls), edge="end", t=t1)
            kinds.append(kind)
            sequences.append(rows)
            prompt_tokens.append(fed)
            output_tokens.append(made)
            if kind == "prefill":
                prefill_latencies += calls
            else:
                full_latencies.append(calls)
    timings = GenerationTimings(
        max_new_tokens=max_new_tokens, window_kinds=tuple(kinds), sequences=tuple(sequences),
        prompt_tokens=tuple(prompt_tokens), output_tokens=tuple(output_tokens),
        ttft_ms=tuple(ttft_ms), tpot_ms=tuple(tpot_ms),
        prefill_latencies_ms=tuple(prefill_latencies),
    )
    return GenerateMeasured([len(c) for c in full_latencies], full_latencies, first_warmup_t,
                            timings)

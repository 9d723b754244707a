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
from dataclasses import dataclass, field
from typing import Any

from energy_console.core.datasets import DatasetError, dataset_spec, load_prompts
from energy_console.core.figures import GenerationTimings
from energy_console.core.protocol import calibrate_iterations
from energy_console.core.workloads import GenerationSettings


@dataclass
class PromptBatch:
    inputs: dict[str, Any]  # input_ids, attention_mask (left-padded), on the model's device
    prompt_tokens: int  # real tokens, padding not counted
    rows: list[int]  # which prompts of the set


@dataclass
class PromptSet:
    ids: list[list[int]]  # token ids per prompt, truncated to the run's sequence length
    texts: list[str]
    pad_id: int
    eos_ids: tuple[int, ...]
    dataset: str
    warnings: list[str] = field(default_factory=list)


def prepare_prompts(loaded, spec, settings: GenerationSettings) -> PromptSet:
    """The run's prompts, tokenized; a prompt longer than the sequence length keeps its end."""
    from energy_console.core.demo_tokenizer import DemoTokenizer
    from energy_console.core.quality.eval_set import text_tokenizer

    if not spec.model.dataset:
        raise DatasetError(f"{spec.model.ref}: generate runs need prompts; add `dataset:` with a "
                           "prompt file (data/prompts-text.jsonl, data/prompts-code.jsonl, or "
                           "yours: JSONL {\"prompt\": ...} or one prompt a line)")
    dataset = dataset_spec(spec.model.dataset, spec.model.base_dir)
    texts = load_prompts(dataset)
    tokenizer = text_tokenizer(loaded, spec.model)
    special = not isinstance(tokenizer, DemoTokenizer)  # the demo one would add CLS/SEP
    ids, warnings, cut = [], [], 0
    for text in texts:
        row = list(tokenizer(text, add_special_tokens=special)["input_ids"])
        if not row:
            raise DatasetError(f"{dataset.path}: the prompt {text[:40]!r} encodes to no tokens; "
                               "remove it or write words in it")
        if len(row) > spec.seq_len:
            cut += 1
            row = row[-spec.seq_len:]
        ids.append(row)
    if cut:
        warnings.append(f"{cut} of {len(ids)} prompts longer than {spec.seq_len} tokens kept "
                        "their last tokens; raise inputs.sequence_lengths to feed them whole")
    eos_ids = _eos_ids(loaded, settings)
    pad_id = getattr(tokenizer, "pad_token_id", None)
    if pad_id is None:
        pad_id = eos_ids[0] if eos_ids else 0
    return PromptSet(ids, texts, int(pad_id), eos_ids, str(dataset.path), warnings)


def _eos_ids(loaded, settings: GenerationSettings) -> tuple[int, ...]:
    if settings.eos_token_id is not None:
        return (settings.eos_token_id,)
    config = getattr(loaded.module, "generation_config", None) or loaded.config
    eos = getattr(config, "eos_token_id", None)
    if eos is None:
        return ()
    return tuple(eos) if isinstance(eos, (list, tuple)) else (int(eos),)


def batches(prompts: PromptSet, batch_size: int, device: str) -> list[PromptBatch]:
    """ceil(prompts / batch size) full batches, left-padded (decoders extend the right end)."""
    import torch

    count = len(prompts.ids)
    out = []
    for start in range(0, count, batch_size):
        rows = [(start + j) % count for j in range(batch_size)]
        width = max(len(prompts.ids[r]) for r in rows)
        ids = torch.full((batch_size, width), prompts.pad_id, dtype=torch.long)
        mask = torch.zeros((batch_size, width), dtype=torch.long)
        for i, r in enumerate(rows):
            row = prompts.ids[r]
            ids[i, width - len(row):] = torch.tensor(row, dtype=torch.long)
            mask[i, width - len(row):] = 1
        out.append(PromptBatch({"input_ids": ids.to(device), "attention_mask": mask.to(device)},
                               int(mask.sum()), rows))
    return out


class _TokenClock:
    """A transformers streamer that stamps each put: the prompt first, then each new token."""

    def __init__(self) -> None:
        self.times: list[float] = []

    def put(self, value) -> None:
        self.times.append(time.monotonic())

    def end(self) -> None:
        pass


def tokens_made(new_tokens, eos_ids: tuple[int, ...]) -> list[int]:
    """Tokens each row generated: up to and with its first EOS (the rest is padding)."""
    counts = []
    for row in new_tokens.tolist():
        stop = next((i for i, t in enumerate(row) if t in eos_ids), None)
        counts.append(len(row) if stop is None else stop + 1)
    return counts


def generate(module, batch: PromptBatch, max_new_tokens: int, prompts: PromptSet,
             settings: GenerationSettings, clock: _TokenClock | None = None):
    """One generate call; the new tokens (batch × steps, padded after EOS)."""
    kwargs = settings.generate_kwargs()
    if not settings.do_sample:  # say greedy outright: a model's generation_config may sample
        kwargs.update(temperature=None, top_p=None, top_k=None)
    output = module.generate(
        **batch.inputs, max_new_tokens=max_new_tokens, min_new_tokens=0,
        pad_token_id=prompts.pad_id, eos_token_id=list(prompts.eos_ids) or None,
        streamer=clock, **kwargs,
    )
    return output[:, batch.inputs["input_ids"].shape[1]:]


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


def greedy_outputs(module, prompt_batches: list[PromptBatch], prompts: PromptSet,
                   max_new_tokens: int) -> list[list[int]]:
    """Each prompt's greedy continuation (up to and with EOS), in prompt order, once each."""
    import torch

    greedy = GenerationSettings()
    out: dict[int, list[int]] = {}
    with torch.no_grad():
        for batch in prompt_batches:
            new = generate(module, batch, max_new_tokens, prompts, greedy)
            counts = tokens_made(new, prompts.eos_ids)
            for row, tokens, count in zip(batch.rows, new.tolist(), counts, strict=True):
                out.setdefault(row, tokens[:count])
    return [out[i] for i in range(len(prompts.ids))]

"""A generating run's prompts: read, tokenized and batched, one generate call, and the greedy
continuations the fidelity of a generating variant is judged against."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from energy_console.core.quality.datasets import DatasetError, dataset_spec, load_prompts
from energy_console.core.spec.workloads import GenerationSettings


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
    from energy_console.core.models.demo_tokenizer import DemoTokenizer
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


def tokens_made(new_tokens, eos_ids: tuple[int, ...]) -> list[int]:
    """Tokens each row generated: up to and with its first EOS (the rest is padding)."""
    counts = []
    for row in new_tokens.tolist():
        stop = next((i for i, t in enumerate(row) if t in eos_ids), None)
        counts.append(len(row) if stop is None else stop + 1)
    return counts


def generate(module, batch: PromptBatch, max_new_tokens: int, prompts: PromptSet,
             settings: GenerationSettings, clock: Any = None, min_new_tokens: int = 0):
    """One generate call; the new tokens (batch × steps, padded after EOS). EOS cannot end a
    row before `min_new_tokens` (transformers masks its logit until then)."""
    kwargs = settings.generate_kwargs()
    if not settings.do_sample:  # say greedy outright: a model's generation_config may sample
        kwargs.update(temperature=None, top_p=None, top_k=None)
    output = module.generate(
        **batch.inputs, max_new_tokens=max_new_tokens, min_new_tokens=min_new_tokens,
        pad_token_id=prompts.pad_id, eos_token_id=list(prompts.eos_ids) or None,
        streamer=clock, **kwargs,
    )
    return output[:, batch.inputs["input_ids"].shape[1]:]


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

"""Quality of a generate run: fidelity of its greedy output to the uncompressed model's,
perplexity on the prompts, and, when the profile asks and the prompts carry tests, pass@1 of the
greedy completions (core.quality.code_exec).

The uncompressed model's greedy continuations of the run's prompts are computed once (before any
technique is applied) and cached in the session's cache folder like core.quality.reference does
for forward passes: the key covers the model, the prompt token ids, the batching, the EOS tokens
and max_new_tokens. Fidelity is always on greedy output, even for runs that sample (sampled text
differs from run to run by design).
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

from energy_console.core.quality.reference import (
    _load_cached,
    _save_atomic,
    model_identity,
    module_device,
)
from energy_console.core.quality.result import QualityResult
from energy_console.core.quality.text_metrics import chrf, exact_match_rate, token_agreement

CACHE_FORMAT = 1


@dataclass
class GenerationReference:
    outputs: list[list[int]]  # greedy continuation per prompt, up to and with EOS
    key: str
    cache_hit: bool = False
    seconds: float = 0.0
    warnings: list[str] = field(default_factory=list)


def prepare_generation_reference(loaded, spec, prompt_batches, prompts,
                                 cache_dir: str | Path | None) -> GenerationReference:
    """The uncompressed model's greedy outputs; call it before compressing."""
    from energy_console.core.quality.prompts import greedy_outputs

    start = time.perf_counter()
    key = _cache_key(loaded, spec, prompts, len(prompt_batches[0].rows))
    path = Path(cache_dir) / f"generation-reference-{key[:20]}.pt" if cache_dir else None
    warnings: list[str] = []
    cached = _load_cached(path, key, warnings)
    if cached is not None:
        return GenerationReference(cached["outputs"], key, True, time.perf_counter() - start,
                                   warnings)
    outputs = greedy_outputs(loaded.module, prompt_batches, prompts, spec.max_new_tokens)
    if path is not None:
        _save_atomic(path, {"format": 1, "key": key, "baseline": {"outputs": outputs}})
    return GenerationReference(outputs, key, False, time.perf_counter() - start, warnings)


def evaluate_generation(loaded, module, reference: GenerationReference, prompt_batches,
                        prompts, max_new_tokens: int, tokenizer=None, code_tasks=None,
                        pass_at_1_timeout_s: float = 10.0) -> QualityResult:
    """Fidelity of `module`'s greedy output to the reference, and perplexity on the prompts;
    with `code_tasks` (one per prompt, in order), pass@1 of the greedy completions."""
    from energy_console.core.quality.prompts import greedy_outputs

    start = time.perf_counter()
    outputs = greedy_outputs(module, prompt_batches, prompts, max_new_tokens)
    texts = [_text(tokenizer, o) for o in outputs]
    reference_texts = [_text(tokenizer, o) for o in reference.outputs]
    agreement = token_agreement(outputs, reference.outputs)
    perplexity, perplexity_ci95 = _prompt_perplexity(module, prompt_batches)
    warnings = list(reference.warnings)
    if tokenizer is None or not hasattr(tokenizer, "decode"):
        warnings.append("the tokenizer cannot turn ids back into text: chrF is computed on the "
                        "token ids written out")
    passed = None
    if code_tasks is not None:
        passed = code_pass_at_1(code_tasks, texts, pass_at_1_timeout_s, warnings)
    return QualityResult(
        task="causal-lm",
        metric="prompt_perplexity",  # of the prompts' own tokens, not of a text
        value=perplexity,
        value_ci95=perplexity_ci95,
        samples=len(outputs),
        seconds=time.perf_counter() - start,
        dataset=prompts.dataset,
        perplexity=perplexity,
        exact_match=exact_match_rate(outputs, reference.outputs),
        token_agreement=agreement,
        chrf=chrf(texts, reference_texts),
        pass_at_1=None if passed is None else passed.value,
        pass_at_1_tasks=None if passed is None else passed.tasks,
        warnings=warnings,
    )


def code_pass_at_1(code_tasks, texts: list[str], timeout_s: float, warnings: list[str]):
    """pass@1 of the completions `texts` against their tasks (core.quality.code_exec), with
    warnings for what a reader of the figure must know."""
    from energy_console.core.quality.code_exec import pass_at_1

    if len(code_tasks) != len(texts):
        raise ValueError(f"{len(code_tasks)} code tasks for {len(texts)} prompts")
    result = pass_at_1(list(code_tasks), texts, timeout_s=timeout_s)
    if not result.network_isolated:
        warnings.append(f"pass@1 ran the completions without network isolation ({result.sandbox})")
    timeouts = result.counts.get("timeout", 0)
    if timeouts:
        warnings.append(f"pass@1: {timeouts} of {result.tasks} completions ran past "
                        f"{timeout_s:g} s and were killed (counted failed)")
    return result


def _text(tokenizer, ids: list[int]) -> str:
    if tokenizer is not None and hasattr(tokenizer, "decode"):
        return str(tokenizer.decode(ids, skip_special_tokens=True))
    return " ".join(f"t{i}" for i in ids)


def _prompt_perplexity(module, prompt_batches) -> tuple[float | None, float | None]:
    """Perplexity of the prompts' tokens (each prompt once; the first token has no context),
    and the half-width of its 95 % bootstrap interval over the prompts."""
    import torch
    from energy_console.core.quality.metrics import TokenScores
    from energy_console.core.quality.reference import main_output

    scores = TokenScores()
    seen: set[int] = set()
    with torch.no_grad():
        for batch in prompt_batches:
            keep = [i for i, r in enumerate(batch.rows) if r not in seen]
            seen.update(batch.rows)
            ids = batch.inputs["input_ids"][keep]
            mask = batch.inputs["attention_mask"][keep]
            positions = (mask.cumsum(-1) - 1).clamp_min(0)
            logits = main_output(module(input_ids=ids, attention_mask=mask,
                                        position_ids=positions)).float().cpu()
            # left padding: a target counts only when the token before it is real too
            both = mask.clone().cpu()
            both[:, 1:] = mask[:, 1:].cpu() & mask[:, :-1].cpu()
            scores.add_likelihood(logits, ids.cpu(), both)
    if not scores.predicted:
        return None, None
    return scores.perplexity(), scores.perplexity_ci95()


def _cache_key(loaded, spec, prompts, batch_size: int) -> str:
    identity = model_identity(loaded, spec, str(module_device(loaded.module)), CACHE_FORMAT)
    identity.update({
        "prompts": prompts.ids,
        "pad": prompts.pad_id,
        "eos": list(prompts.eos_ids),
        "batch_size": batch_size,
        "max_new_tokens": spec.max_new_tokens,
    })
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()

"""Scoring a (compressed) module against the reference: task metric and fidelity."""

from __future__ import annotations

import time

import energy_console.core.quality.metrics as metrics
from energy_console.core.quality.reference import Reference, run_batches
from energy_console.core.quality.result import QualityResult


def evaluate(loaded, module, reference: Reference, input_dtype=None) -> QualityResult:
    """Quality of `module` (the compressed model) on the reference's inputs.

    Floating inputs are cast to `input_dtype` when given (precision casts). Run it outside any
    energy window: it reports its own seconds.
    """
    start = time.perf_counter()
    score = {
        "classification": _classification,
        "causal-lm": _causal_lm,
        "outputs": _outputs,
    }[reference.mode]
    result = score(module, reference, input_dtype)
    result.seconds = time.perf_counter() - start
    result.warnings = [*reference.warnings, *result.warnings]
    return result


def _classification(module, reference: Reference, input_dtype) -> QualityResult:
    import torch

    logits = torch.cat(list(run_batches(module, reference.eval_set, reference.device,
                                        input_dtype)))
    base = reference.baseline["logits"]
    predictions = logits.argmax(-1)
    result = QualityResult(
        task=reference.task,
        metric="top1_agreement",
        value=None,
        samples=len(predictions),
        seconds=0.0,
        dataset=reference.eval_set.dataset,
        top1_agreement=metrics.accuracy(predictions, base.argmax(-1)),
        mean_kl=float(metrics.kl_divergence(base.log_softmax(-1), logits.log_softmax(-1))
                      .clamp_min(0.0).mean()),
        cosine_similarity=metrics.mean_cosine(base, logits),
    )
    labels = reference.eval_set.labels
    if labels is not None:
        result.metric = "accuracy"
        result.accuracy = metrics.accuracy(predictions, labels)
        result.macro_f1 = metrics.macro_f1(predictions, labels)
    result.value = result.accuracy if labels is not None else result.top1_agreement
    return result


def _causal_lm(module, reference: Reference, input_dtype) -> QualityResult:
    eval_set = reference.eval_set
    top1, log_probs = reference.baseline["top1"], reference.baseline.get("log_probs")
    scores = metrics.TokenScores()
    row = 0
    outputs = run_batches(module, eval_set, reference.device, input_dtype)
    for batch, valid, logits in zip(eval_set.batches, eval_set.valid_counts, outputs, strict=True):
        mask = batch["attention_mask"][:valid] if "attention_mask" in batch else None
        if mask is None:
            mask = batch["input_ids"][:valid].new_ones(logits.shape[:2])
        rows = slice(row, row + valid)
        scores.add_fidelity(logits, top1[rows], None if log_probs is None else log_probs[rows],
                            mask)
        if eval_set.dataset is not None:
            scores.add_likelihood(logits, batch["input_ids"][:valid], mask)
        row += valid
    result = QualityResult(
        task=reference.task,
        metric="next_token_agreement",
        value=scores.agreement(),
        samples=row,
        seconds=0.0,
        dataset=eval_set.dataset,
        next_token_agreement=scores.agreement(),
        mean_kl=scores.mean_kl() if log_probs is not None else None,
    )
    if eval_set.dataset is not None:
        result.metric = "perplexity"
        result.value = result.perplexity = scores.perplexity()
        result.value_ci95 = scores.perplexity_ci95()
    return result


def _outputs(module, reference: Reference, input_dtype) -> QualityResult:
    import torch

    outputs = torch.cat([o.reshape(o.shape[0], -1) for o in run_batches(
        module, reference.eval_set, reference.device, input_dtype)])
    cosine = metrics.mean_cosine(reference.baseline["outputs"], outputs)
    return QualityResult(
        task=reference.task,
        metric="cosine_similarity",
        value=cosine,
        samples=len(outputs),
        seconds=0.0,
        dataset=reference.eval_set.dataset,
        cosine_similarity=cosine,
    )

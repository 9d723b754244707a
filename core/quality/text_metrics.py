"""Fidelity of generated text to a reference generation: exact match, token agreement, chrF.

Pure Python, no dependency. chrF follows Popović (2015) as sacrebleu computes it by default:
character n-grams of order 1–6 with whitespace removed, precision and recall averaged over the
orders, F-beta with beta = 2, statistics summed over the corpus; 0–100.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

CHRF_ORDER = 6
CHRF_BETA = 2.0


def exact_match_rate(outputs: Sequence[Sequence[int]],
                     references: Sequence[Sequence[int]]) -> float:
    """Share of outputs identical to their reference (token by token, same length)."""
    _same_count(outputs, references)
    if not references:
        return 1.0
    return sum(list(o) == list(r) for o, r in zip(outputs, references, strict=True)) / len(
        references)


def token_agreement(outputs: Sequence[Sequence[int]],
                    references: Sequence[Sequence[int]]) -> float:
    """Tokens equal at the same position ÷ the longer of output and reference, over all
    prompts (a token one of them lacks counts as a disagreement)."""
    _same_count(outputs, references)
    agree = total = 0
    for output, reference in zip(outputs, references, strict=True):
        total += max(len(output), len(reference))
        agree += sum(a == b for a, b in zip(output, reference, strict=False))
    return agree / total if total else 1.0


def chrf(hypotheses: Sequence[str], references: Sequence[str],
         order: int = CHRF_ORDER, beta: float = CHRF_BETA) -> float:
    """Corpus chrF, 0–100 (100: the same characters in the same n-grams)."""
    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses for {len(references)} references")
    matched = [0] * order
    hyp_total = [0] * order
    ref_total = [0] * order
    for hypothesis, reference in zip(hypotheses, references, strict=True):
        hyp, ref = _squeeze(hypothesis), _squeeze(reference)
        for n in range(1, order + 1):
            h, r = _ngrams(hyp, n), _ngrams(ref, n)
            matched[n - 1] += sum((h & r).values())
            hyp_total[n - 1] += sum(h.values())
            ref_total[n - 1] += sum(r.values())
    orders = [n for n in range(order) if hyp_total[n] or ref_total[n]]
    if not orders:
        return 100.0  # nothing on either side: identical
    precision = sum(matched[n] / hyp_total[n] if hyp_total[n] else 0.0 for n in orders)
    recall = sum(matched[n] / ref_total[n] if ref_total[n] else 0.0 for n in orders)
    precision, recall = precision / len(orders), recall / len(orders)
    if precision + recall == 0:
        return 0.0
    b2 = beta * beta
    return 100.0 * (1 + b2) * precision * recall / (b2 * precision + recall)


def _squeeze(text: str) -> str:
    return "".join(text.split())


def _ngrams(text: str, n: int) -> Counter[str]:
    return Counter(text[i:i + n] for i in range(len(text) - n + 1))


def _same_count(outputs: Sequence, references: Sequence) -> None:
    if len(outputs) != len(references):
        raise ValueError(f"{len(outputs)} outputs for {len(references)} references")

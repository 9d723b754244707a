"""Quality and fidelity figures from output tensors (float32, on the CPU)."""

from __future__ import annotations


def accuracy(predictions, labels) -> float:
    return float((predictions == labels).float().mean())


def macro_f1(predictions, labels) -> float:
    """F1 averaged over the classes present in the labels or the predictions."""
    import torch

    scores = []
    for cls in torch.unique(torch.cat([predictions, labels])).tolist():
        true_pos = int(((predictions == cls) & (labels == cls)).sum())
        false_pos = int(((predictions == cls) & (labels != cls)).sum())
        false_neg = int(((predictions != cls) & (labels == cls)).sum())
        scores.append(2 * true_pos / (2 * true_pos + false_pos + false_neg))
    return sum(scores) / len(scores)


def kl_divergence(reference_log_probs, log_probs):
    """KL(reference || other) in nats along the last dimension."""
    return (reference_log_probs.exp() * (reference_log_probs - log_probs)).sum(-1)


def mean_cosine(reference, other) -> float:
    """Cosine similarity of each sample's outputs (flattened), averaged over samples."""
    import torch

    ref = reference.reshape(reference.shape[0], -1)
    out = other.reshape(other.shape[0], -1)
    return float(torch.nn.functional.cosine_similarity(ref, out, dim=1, eps=1e-12).mean())


class TokenScores:
    """Running sums for causal-LM figures over token positions, fed one batch at a time."""

    def __init__(self):
        self.agree = self.positions = 0
        self.kl_sum = 0.0
        self.nll_sum = 0.0
        self.predicted = 0
        self.sequences: list[tuple[float, int]] = []  # (NLL sum, tokens) of each sequence

    def add_fidelity(self, logits, reference_top1, reference_log_probs, mask) -> None:
        """Next-token agreement, and KL where the reference kept its log-probs, per position."""
        mask = mask.bool()
        self.agree += int(((logits.argmax(-1) == reference_top1) & mask).sum())
        self.positions += int(mask.sum())
        if reference_log_probs is not None:
            # The reference is kept in float16: renormalise it, and clamp the rounding error
            # that would otherwise read as a (impossible) negative divergence.
            reference = reference_log_probs.float().log_softmax(-1)
            kl = kl_divergence(reference, logits.log_softmax(-1)).clamp_min(0.0)
            self.kl_sum += float(kl[mask].sum())

    def add_likelihood(self, logits, input_ids, mask) -> None:
        """Negative log-likelihood of each next token (the first one of a window has no context)."""
        import torch

        nll = torch.nn.functional.cross_entropy(
            logits[:, :-1].transpose(1, 2), input_ids[:, 1:], reduction="none"
        )
        target_mask = mask[:, 1:].bool()
        self.nll_sum += float(nll[target_mask].sum())
        self.predicted += int(target_mask.sum())
        per_row = (nll * target_mask).sum(-1).tolist()
        self.sequences += [(float(total), int(count))
                           for total, count in zip(per_row, target_mask.sum(-1).tolist(),
                                                   strict=True) if count]

    def agreement(self) -> float:
        return self.agree / self.positions

    def mean_kl(self) -> float:
        return self.kl_sum / self.positions

    def perplexity(self) -> float:
        import math

        mean_nll = self.nll_sum / self.predicted
        return math.exp(mean_nll) if mean_nll < 700 else math.inf

    def perplexity_ci95(self, rounds: int = 1000, seed: int = 0) -> float | None:
        """Half-width of a 95 % bootstrap interval of the perplexity, resampling whole sequences
        (their tokens are not independent); None with fewer than 2 sequences."""
        import math
        import random

        if len(self.sequences) < 2:
            return None
        rng = random.Random(seed)
        values = []
        for _ in range(rounds):
            drawn = rng.choices(self.sequences, k=len(self.sequences))
            mean_nll = sum(s for s, _ in drawn) / max(1, sum(n for _, n in drawn))
            values.append(math.exp(min(mean_nll, 700.0)))
        values.sort()
        return (values[int(0.975 * (rounds - 1))] - values[int(0.025 * (rounds - 1))]) / 2

"""Exact magnitude pruning in place, for models of any size.

torch.nn.utils.prune keeps a mask and a copy of every weight, and its global scope concatenates
all weights and sorts them (`topk` over the whole model): for a 355M-parameter model that is
minutes and gigabytes. Here the k-th smallest magnitude is found from a histogram of all weights
(streamed layer by layer), refined inside the one bin that holds it, and the weights are zeroed
in place: the same zeros as L1Unstructured (exactly k of them; among equal magnitudes the first
in layer order), without a mask, a copy or a sort of the whole model.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

_BINS = 4096


def prune_smallest(weights: Sequence[Any], amount: float) -> int:
    """Zero the round(amount × n) smallest-magnitude entries of `weights` (tensors, treated as
    one pool; shared tensors count once). Returns how many entries were zeroed."""
    import torch

    pool = unique_tensors(weights)
    total = sum(w.numel() for w in pool)
    k = round(amount * total)
    if k <= 0 or total == 0:
        return 0
    with torch.no_grad():
        if k >= total:
            for w in pool:
                w.zero_()
            return total
        threshold, below = _kth_magnitude(pool, k)
        ties_left = k - below  # entries equal to the threshold still to zero, first ones first
        for w in pool:
            magnitude = w.detach().abs()
            mask = magnitude < threshold
            if ties_left > 0:
                ties = (magnitude == threshold).flatten().nonzero().flatten()[:ties_left]
                mask.view(-1)[ties] = True
                ties_left -= ties.numel()
            w.masked_fill_(mask, 0)
    return k


def _kth_magnitude(pool: list, k: int) -> tuple[float, int]:
    """(t, below): the k-th smallest magnitude in the pool (1-based) and how many are < t."""
    import torch

    top = max(float(w.detach().abs().max()) for w in pool)
    if top == 0.0:
        return 0.0, 0
    counts = torch.zeros(_BINS)
    for w in pool:
        counts += torch.histc(w.detach().abs().float(), bins=_BINS, min=0.0, max=top)
    cumulative = torch.cumsum(counts, 0)
    index = int(torch.searchsorted(cumulative, torch.tensor(float(k))))
    low = top * index / _BINS
    high = top * (index + 1) / _BINS
    # histc rounds at bin edges: the counts that decide are taken exactly, with comparisons
    below = sum(int((w.detach().abs() < low).sum()) for w in pool)
    inside = torch.cat([_between(w, low, high) for w in pool])
    rank = k - below
    if not 0 < rank <= inside.numel():  # a value at an edge the histogram placed elsewhere
        inside = torch.cat([w.detach().abs().flatten().float() for w in pool])
        below, rank = 0, k
    threshold = float(torch.kthvalue(inside, rank).values)
    below += int((inside < threshold).sum())
    return threshold, below


def _between(w, low: float, high: float):
    magnitude = w.detach().abs().flatten().float()
    return magnitude[(magnitude >= low) & (magnitude <= high)]


def unique_tensors(weights: Sequence[Any]) -> list:
    """The tensors in order, each once (tied weights are one tensor)."""
    seen: set[int] = set()
    out = []
    for w in weights:
        if id(w) not in seen:
            seen.add(id(w))
            out.append(w)
    return out

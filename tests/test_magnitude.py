"""Exact in-place magnitude pruning: the same zeros as torch's L1Unstructured, without its masks."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from energy_console.core.compression.magnitude import prune_smallest

if TYPE_CHECKING:
    import torch


def _layers(seed: int, shapes=((64, 32), (17, 5), (128,))) -> list[torch.nn.Parameter]:
    import torch

    generator = torch.Generator().manual_seed(seed)
    return [torch.nn.Parameter(torch.randn(*shape, generator=generator)) for shape in shapes]


def _torch_zeros(weights, amount: float, scope: str) -> list[torch.Tensor]:
    """What torch.nn.utils.prune zeroes for the same weights (on copies)."""
    import torch
    from torch.nn.utils import prune

    holders = []
    for w in weights:
        holder = torch.nn.Module()
        holder.weight = torch.nn.Parameter(w.detach().clone())
        holders.append(holder)
    targets = [(h, "weight") for h in holders]
    if scope == "global":
        prune.global_unstructured(targets, pruning_method=prune.L1Unstructured, amount=amount)
    else:
        for h, name in targets:
            prune.l1_unstructured(h, name, amount=amount)
    return [h.weight == 0 for h in holders]


@pytest.mark.parametrize("amount", [0.1, 0.5, 0.93])
@pytest.mark.parametrize("seed", [0, 1])
def test_global_pruning_zeroes_what_torch_zeroes(amount, seed):
    weights = _layers(seed)
    expected = _torch_zeros(weights, amount, "global")
    count = prune_smallest(weights, amount)
    assert count == round(amount * sum(w.numel() for w in weights))
    for w, zeros in zip(weights, expected, strict=True):
        assert (w == 0).equal(zeros)


def test_per_layer_pruning_zeroes_what_torch_zeroes():
    weights = _layers(3)
    expected = _torch_zeros(weights, 0.4, "layer")
    for w in weights:
        prune_smallest([w], 0.4)
    for w, zeros in zip(weights, expected, strict=True):
        assert (w == 0).equal(zeros)


def test_equal_magnitudes_zero_exactly_k_entries():
    import torch

    w = torch.nn.Parameter(torch.tensor([[1.0, -1.0, 1.0, 2.0], [1.0, 3.0, -1.0, 0.5]]))
    assert prune_smallest([w], 0.5) == 4
    assert int((w == 0).sum()) == 4
    assert w[1, 3] == 0  # the smallest goes first, then ties among the ±1s
    assert {float(v) for v in w.detach().flatten() if v != 0} <= {1.0, -1.0, 2.0, 3.0}
    assert w[0, 3] == 2.0 and w[1, 1] == 3.0


def test_a_tied_weight_counts_once():
    shared = _layers(4, shapes=((10, 10),))[0]
    other = _layers(5, shapes=((10, 10),))[0]
    assert prune_smallest([shared, other, shared], 0.5) == 100
    assert int((shared == 0).sum()) + int((other == 0).sum()) == 100


def test_nothing_and_everything():
    w = _layers(6, shapes=((8, 8),))[0]
    before = w.detach().clone()
    assert prune_smallest([w], 0.0) == 0 and w.equal(before)
    assert prune_smallest([w], 1.0) == 64 and int((w == 0).sum()) == 64


def test_half_precision_weights_are_pruned_in_their_own_dtype():
    import torch

    w = torch.nn.Parameter(torch.randn(32, 32, generator=torch.Generator().manual_seed(7))
                           .to(torch.bfloat16))
    prune_smallest([w], 0.25)
    assert w.dtype == torch.bfloat16
    assert int((w == 0).sum()) == 256
    kept = w[w != 0].abs().float()
    assert float(kept.min()) >= float(w.detach().abs().float().flatten().kthvalue(256).values)

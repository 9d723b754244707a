"""Global magnitude pruning of a model-sized pool of Linear weights: energy-console's in-place
histogram selection against torch.nn.utils.prune.global_unstructured (+ prune.remove).

    python bench/bench_magnitude_prune.py [LAYERS]     # each layer 1024 x 4096 = 4.2M weights

Prints the wall time of each and whether both zeroed as many entries, differing at most among
entries of equal magnitude at the threshold (which torch's topk picks arbitrarily).
"""

from __future__ import annotations

import sys
import time

import torch
from energy_console.core.compression.magnitude import prune_smallest
from torch.nn.utils import prune


def main() -> None:
    layers = int(sys.argv[1]) if len(sys.argv) > 1 else 24
    torch.manual_seed(0)
    ours = [torch.nn.Linear(1024, 4096) for _ in range(layers)]
    theirs = [torch.nn.Linear(1024, 4096) for _ in range(layers)]
    for a, b in zip(ours, theirs, strict=True):
        b.load_state_dict(a.state_dict())
    original = [layer.weight.detach().abs().clone() for layer in ours]
    weights = sum(layer.weight.numel() for layer in ours)
    t0 = time.perf_counter()
    prune_smallest([layer.weight for layer in ours], 0.5)
    ours_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    prune.global_unstructured([(layer, "weight") for layer in theirs],
                              pruning_method=prune.L1Unstructured, amount=0.5)
    for layer in theirs:
        prune.remove(layer, "weight")
    theirs_s = time.perf_counter() - t0
    zeros = [sum(int((layer.weight == 0).sum()) for layer in side) for side in (ours, theirs)]
    # among entries of equal magnitude at the threshold, torch's topk picks any of them
    differ = [(a.weight == 0) != (b.weight == 0) for a, b in zip(ours, theirs, strict=True)]
    magnitudes = {float(v) for m, d in zip(original, differ, strict=True) for v in m[d].unique()}
    same = zeros[0] == zeros[1] and len(magnitudes) <= 1
    print(f"{weights / 1e6:.0f}M weights, amount 0.5: in place {ours_s:.2f} s, "
          f"torch global_unstructured {theirs_s:.2f} s ({theirs_s / ours_s:.1f}x); "
          f"same zeros (up to ties at the threshold): {same}")


if __name__ == "__main__":
    main()

"""FLOPs per forward pass: counted on real torch models."""

from __future__ import annotations

from energy_console.core.models import load_model
from energy_console.core.spec.profile import ModelEntry
from energy_console.core.worker.flops import changes_flops, count_flops


def test_a_linear_layer_counts_two_flops_per_multiply_add():
    import torch

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = torch.nn.Linear(64, 32, bias=False)

        def forward(self, x):
            return self.fc(x)

    assert count_flops(Net(), {"x": torch.randn(4, 64)}) == 2 * 4 * 64 * 32


def test_a_demo_transformer_counts_more_flops_for_longer_inputs():
    loaded = load_model(ModelEntry("demo/tiny-bert-random", "demo"), "cpu")
    short = count_flops(loaded.module, loaded.make_inputs(1, 16, seed=0))
    long = count_flops(loaded.module, loaded.make_inputs(1, 64, seed=0))
    assert short and long and long > 3 * short


def test_only_structured_pruning_is_counted_on_the_compressed_model():
    assert changes_flops(["structured-prune", "dynamic-int8"])
    assert not changes_flops(["magnitude-prune", "dynamic-int8", "bf16"])

"""Each technique on the demo models: it runs, stays close to the baseline, and sizes honestly."""

from __future__ import annotations

import copy
import functools

import pytest
from energy_console.core.compression import (
    NotApplicable,
    TechniqueContext,
    apply_technique,
    get,
)
from energy_console.core.compression.catalogue import format_techniques, technique_rows
from energy_console.core.models import load_model
from energy_console.core.models.size import measure_size
from energy_console.core.spec.profile import ModelEntry
from energy_console.core.spec.technique import Step, TechniqueSpec

INPUT_SIZE = {
    "demo/tiny-bert-random": 16,
    "demo/tiny-gpt2-random": 16,
    "demo/tiny-resnet-random": 32,
    "demo/tiny-vit-random": 64,
}


@functools.cache
def _loaded(ref: str):
    return load_model(ModelEntry(ref=ref, source="demo"), "cpu")


def _outputs(module, inputs, no_grad: bool = False):
    import torch

    with torch.no_grad() if no_grad else torch.inference_mode():
        out = module(**inputs)
    return (out.logits if hasattr(out, "logits") else out[0]).float()


def compress(ref: str, steps: list[tuple[str, dict]]):
    """(baseline logits, compressed logits, baseline size, compressed size, ctx)."""
    loaded = _loaded(ref)
    size = INPUT_SIZE[ref]
    module = copy.deepcopy(loaded.module)
    inputs = loaded.make_inputs(1, size, seed=0)
    ctx = TechniqueContext(
        device="cpu",
        task=loaded.task,
        loaded=loaded,
        calibration_inputs=lambda: [loaded.make_inputs(1, size, seed=100 + i) for i in range(2)],
    )
    before = measure_size(module)
    reference = _outputs(module, inputs)
    spec = TechniqueSpec(tuple(Step(name, given) for name, given in steps), len(steps) > 1)
    module = apply_technique(module, spec, ctx)
    output = _outputs(module, inputs, no_grad=getattr(ctx, "needs_no_grad", False))
    return reference, output, before, measure_size(module), ctx


def cosine(a, b) -> float:
    import torch

    return torch.nn.functional.cosine_similarity(a.flatten(), b.flatten(), dim=0).item()


def test_dynamic_int8_barely_shrinks_a_conv_only_resnet():
    ref, out, before, after, _ = compress("demo/tiny-resnet-random", [("dynamic-int8", {})])
    assert after.size_bytes > 0.95 * before.size_bytes
    assert cosine(ref, out) > 0.999


def test_dynamic_int8_shrinks_a_linear_heavy_vit_by_over_60_percent():
    ref, out, before, after, _ = compress("demo/tiny-vit-random", [("dynamic-int8", {})])
    assert after.size_bytes < 0.40 * before.size_bytes
    assert after.params == before.params  # packed int8 weights still count as parameters
    assert cosine(ref, out) > 0.99


def test_dynamic_int8_quantizes_gpt2_conv1d_layers():
    ref, out, before, after, _ = compress("demo/tiny-gpt2-random", [("dynamic-int8", {})])
    assert after.dtype_bytes.get("qint8", 0) > 0
    assert after.size_bytes < 0.7 * before.size_bytes
    assert cosine(ref, out) > 0.99


def test_dynamic_int8_on_cuda_without_torchao_names_the_extra():
    reason = get("dynamic-int8").reason_not_applicable(
        TechniqueContext("cuda:0", "text-classification", None, list), {}
    )
    assert reason is not None and "energy-console[torchao]" in reason


def test_static_int8_quantizes_the_resnet_convolutions():
    ref, out, before, after, ctx = compress("demo/tiny-resnet-random", [("static-int8", {})])
    assert after.size_bytes < 0.4 * before.size_bytes
    assert ctx.extra_result["static_int8_blocks"] > 0
    assert cosine(ref, out) > 0.99


def _input_scale(calibration: str, pixels) -> float:
    """The scale static-int8 quantizes a one-convolution model's input with, calibrated on
    `pixels`."""
    import torch

    class _OneConv(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.body = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3))

        def forward(self, pixel_values):
            return self.body(pixel_values)

    ctx = TechniqueContext("cpu", "image-classification", None, lambda: [{"pixel_values": pixels}])
    spec = TechniqueSpec((Step("static-int8", {"calibration": calibration}),), False)
    module = apply_technique(_OneConv(), spec, ctx)
    return float(next(value for name, value in module.named_buffers() if "_scale_0" in name))


def test_static_int8_calibrated_by_minmax_spans_the_range_seen_histogram_clips_an_outlier():
    import torch

    pixels = torch.randn(1, 1, 512, 512, generator=torch.Generator().manual_seed(0)).clamp(-3, 3)
    pixels[0, 0, 0, 0] = 100.0  # one outlier among 262,144 values: clipping it costs less
    levels = 127 if torch.backends.quantized.engine == "x86" else 255  # x86: reduce_range
    span = float(pixels.max() - pixels.min())
    assert _input_scale("minmax", pixels) == pytest.approx(span / levels, rel=1e-4)
    assert _input_scale("histogram", pixels) < 0.5 * span / levels


def test_static_int8_runs_the_vit_with_close_outputs():
    ref, out, before, after, _ = compress("demo/tiny-vit-random", [("static-int8", {})])
    assert after.size_bytes < 0.4 * before.size_bytes
    assert cosine(ref, out) > 0.99


@pytest.mark.parametrize(
    ("name", "max_ratio", "min_cosine"),
    [("weight-int8", 0.35, 0.999), ("weight-fp8", 0.35, 0.99), ("weight-int4", 0.25, 0.9)],
)
def test_quanto_weight_quantization_shrinks_the_vit(name, max_ratio, min_cosine):
    ref, out, before, after, ctx = compress("demo/tiny-vit-random", [(name, {})])
    assert after.size_bytes < max_ratio * before.size_bytes
    assert cosine(ref, out) > min_cosine
    assert ctx.needs_no_grad


def test_onnx_int8_reports_the_onnx_file_size_and_stays_close():
    ref, out, before, after, ctx = compress("demo/tiny-bert-random", [("onnx-int8", {})])
    assert after.size_bytes == ctx.extra_result["onnx_size_bytes"]
    assert after.size_bytes < 0.5 * before.size_bytes
    assert after.params > 0.9 * before.params
    assert cosine(ref, out) > 0.99


def test_onnx_int8_model_runs_other_sequence_lengths():
    import torch

    loaded = _loaded("demo/tiny-bert-random")
    _, _, _, _, ctx = compress("demo/tiny-bert-random", [])
    module = get("onnx-int8").apply(copy.deepcopy(loaded.module), ctx, {})
    longer = loaded.make_inputs(2, 24, seed=3)
    assert torch.allclose(
        _outputs(module, longer), _outputs(loaded.module, longer), atol=0.05, rtol=0
    )


def test_magnitude_prune_half_leaves_half_nonzero_at_the_same_size():
    params = {"amount": 0.5}
    ref, out, before, after, ctx = compress("demo/tiny-vit-random", [("magnitude-prune", params)])
    assert after.size_bytes == pytest.approx(before.size_bytes, rel=0.001)
    assert after.params == before.params
    assert 0.45 < after.nonzero_params / before.params < 0.55
    assert ctx.extra_result["sparsity"] == pytest.approx(0.5, abs=0.01)
    assert any("do not change" in w for w in ctx.warnings)
    assert out.shape == ref.shape and out.isfinite().all()


def test_magnitude_prune_per_layer_prunes_every_layer_alike():
    params = {"amount": 0.3, "scope": "layer"}
    _, _, _, _, ctx = compress("demo/tiny-resnet-random", [("magnitude-prune", params)])
    assert ctx.extra_result["sparsity"] == pytest.approx(0.3, abs=0.01)


@pytest.mark.parametrize(
    "ref", ["demo/tiny-bert-random", "demo/tiny-vit-random", "demo/tiny-resnet-random"]
)
def test_structured_prune_half_removes_over_half_the_parameters(ref):
    ref_out, out, before, after, _ = compress(ref, [("structured-prune", {"ratio": 0.5})])
    assert after.params < 0.5 * before.params
    assert after.size_bytes < 0.55 * before.size_bytes
    assert out.shape == ref_out.shape and out.isfinite().all()


def test_structured_prune_keeps_the_classifier_and_updates_the_config():
    loaded = _loaded("demo/tiny-bert-random")
    _, _, _, _, ctx = compress("demo/tiny-bert-random", [])
    module = get("structured-prune").apply(copy.deepcopy(loaded.module), ctx, {"ratio": 0.5})
    assert module.classifier.out_features == 2
    assert module.config.hidden_size == module.classifier.in_features
    attention = module.bert.encoder.layer[0].attention.self
    assert attention.all_head_size == attention.query.out_features
    assert attention.all_head_size % 8 == 0


def test_structured_prune_on_gpt2_is_skipped_with_a_reason():
    loaded = _loaded("demo/tiny-gpt2-random")
    _, _, _, _, ctx = compress("demo/tiny-gpt2-random", [])
    with pytest.raises(NotApplicable, match="structured-prune"):
        get("structured-prune").apply(copy.deepcopy(loaded.module), ctx, {"ratio": 0.5})


def test_chain_structured_prune_then_dynamic_int8_compounds():
    steps = [("structured-prune", {"ratio": 0.5}), ("dynamic-int8", {})]
    ref, out, before, after, _ = compress("demo/tiny-bert-random", steps)
    assert after.size_bytes < 0.25 * before.size_bytes
    assert after.dtype_bytes.get("qint8", 0) > 0
    assert out.shape == ref.shape and out.isfinite().all()


def test_sparse_2_4_is_skipped_on_cpu_with_the_reason():
    reason = get("sparse-2:4").reason_not_applicable(
        TechniqueContext("cpu", "text-classification", None, list), {}
    )
    assert reason == "sparse-2:4 runs on cuda only, not on cpu"


def test_catalogue_lists_every_technique_with_parameters_and_availability():
    rows = {row.name: row for row in technique_rows()}
    assert {"dynamic-int8", "static-int8", "onnx-int8", "weight-int4", "sparse-2:4"} <= set(rows)
    assert rows["magnitude-prune"].parameters == "amount=0.5 [0..1], scope=global (global|layer)"
    assert rows["onnx-int8"].available
    text = format_techniques()
    assert "structured-prune" in text and "chain" in text

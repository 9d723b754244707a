"""Compressed variants on disk (core.variant_cache): a hit gives the module and the context the
technique left; the key changes with the technique's parameters."""

from __future__ import annotations

import dataclasses

import pytest
from energy_console.core.compression import TechniqueContext, apply_technique, parse_technique
from energy_console.core.models import load_model
from energy_console.core.models.size import measure_size
from energy_console.core.session.plan import expand
from energy_console.core.session.profile_check import parse_profile
from energy_console.core.worker.variant_cache import VariantCache, cache_folder
from energy_console.core.worker.variant_weights import module_structure

PROFILE = """\
name: cache
models: [demo/tiny-bert-random]
techniques: [dynamic-int8]
inputs: {batch_sizes: [1], sequence_lengths: [16]}
"""


def variant(technique: str = "dynamic-int8"):
    spec = expand(parse_profile(PROFILE), device="cpu")[0]
    spec = dataclasses.replace(spec, technique=parse_technique(technique))
    loaded = load_model(spec.model, "cpu")
    ctx = TechniqueContext(device="cpu", task=loaded.task, loaded=loaded,
                           calibration_inputs=lambda: [loaded.make_inputs(1, 16, seed=1)])
    return spec, loaded, ctx


def test_a_cached_variant_comes_back_with_its_size_outputs_and_context(tmp_path):
    import torch

    cache = VariantCache(tmp_path)
    spec, loaded, ctx = variant()
    key = cache.key(loaded, spec, ctx)
    assert cache.load(key, ctx) is None
    module = apply_technique(loaded.module, spec.technique, ctx)
    ctx.extra_result["marker"] = 1
    cache.save(key, module, ctx, measure_size(module), module_structure(loaded.module))
    assert cache.path(key).is_file()  # quantized modules: a pickle, loaded once trusted
    assert not cache.weights_path(key).exists()

    spec2, loaded2, ctx2 = variant()
    assert cache.key(loaded2, spec2, ctx2) == key
    cached, size = cache.load(key, ctx2)
    assert measure_size(cached) == size == measure_size(module)
    assert ctx2.extra_result == {"marker": 1}
    inputs = loaded.make_inputs(1, 16, seed=0)
    with torch.inference_mode():
        assert torch.equal(cached(**inputs).logits, module(**inputs).logits)


def test_the_key_changes_with_the_technique_and_its_parameters(tmp_path):
    cache = VariantCache(tmp_path)
    keys = set()
    techniques = ("dynamic-int8", {"magnitude-prune": {"amount": 0.5}},
                  {"magnitude-prune": {"amount": 0.3}})
    for technique in techniques:
        spec, loaded, ctx = variant(technique)
        keys.add(cache.key(loaded, spec, ctx))
    assert len(keys) == 3


def test_the_cache_is_off_unless_the_profile_asks(tmp_path, monkeypatch):
    monkeypatch.setenv("ENERGY_CONSOLE_CACHE_DIR", str(tmp_path / "user"))
    assert cache_folder("off", tmp_path / "cache") is None
    assert cache_folder("session", tmp_path / "cache") == tmp_path / "cache" / "variants"
    assert cache_folder("user", tmp_path / "cache") == tmp_path / "user" / "variants"


@pytest.mark.parametrize("technique", ["fp16", {"magnitude-prune": {"amount": 0.5}}, "baseline"])
def test_a_plain_variant_is_kept_as_weights_and_comes_back_without_unpickling(
        tmp_path, monkeypatch, technique):
    import torch
    from safetensors import safe_open

    cache = VariantCache(tmp_path)
    spec, loaded, ctx = variant(technique)
    key, base = cache.key(loaded, spec, ctx), module_structure(loaded.module)
    module = apply_technique(loaded.module, spec.technique, ctx)
    cache.save(key, module, ctx, measure_size(module), base)
    assert not cache.path(key).exists()
    with safe_open(cache.weights_path(key), framework="pt") as f:  # a safetensors file
        assert "bert.encoder.layer.0.attention.self.query.weight" in f.keys()  # noqa: SIM118

    def no_unpickling(*args, **kwargs):
        raise AssertionError("torch.load called: a plain variant was unpickled")

    monkeypatch.setattr(torch, "load", no_unpickling)
    spec2, loaded2, ctx2 = variant(technique)
    cached, size = cache.load(key, ctx2, loaded2.module)
    assert cached is loaded2.module and ctx2.warnings == ctx.warnings
    assert ctx2.input_dtype == ctx.input_dtype and size == measure_size(module)
    assert {t.dtype for t in cached.parameters()} == {t.dtype for t in module.parameters()}
    inputs = loaded.make_inputs(1, 16, seed=0)
    with torch.inference_mode():
        assert torch.equal(cached(**inputs).logits, module(**inputs).logits)


def test_weights_are_not_put_into_a_model_of_another_structure(tmp_path):
    import torch

    cache = VariantCache(tmp_path)
    spec, loaded, ctx = variant("fp16")
    key, base = cache.key(loaded, spec, ctx), module_structure(loaded.module)
    module = apply_technique(loaded.module, spec.technique, ctx)
    cache.save(key, module, ctx, measure_size(module), base)
    other = torch.nn.Linear(4, 2)
    ctx2 = variant("fp16")[2]
    assert cache.load(key, ctx2, other) is None
    assert any("not the one this variant was made from" in w for w in ctx2.warnings)
    assert other.weight.dtype == torch.float32

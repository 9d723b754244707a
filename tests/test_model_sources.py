"""Model sources declare themselves: a new source is one module and one SOURCE_MODULES line."""

from __future__ import annotations

import pytest
from energy_console.core import models
from energy_console.core.models import load_model
from energy_console.core.session.plan import expand, model_task
from energy_console.core.session.profile_check import parse_profile
from energy_console.core.spec.profile import ProfileError


@pytest.fixture
def zoo(monkeypatch):
    monkeypatch.setattr(models, "SOURCE_MODULES", (*models.SOURCE_MODULES,
                                                   "tests.fakes.model_source"))


def test_a_new_source_is_parsed_planned_and_loaded_through_its_own_module(zoo):
    profile = parse_profile("name: t\nmodels: [zoo/image-classification, {zoo: zoo/causal-lm}]\n"
                            "inputs: {resolutions: [32], sequence_lengths: [16]}\n")
    assert [(m.source, m.ref) for m in profile.models] == [
        ("zoo", "zoo/image-classification"), ("zoo", "zoo/causal-lm")]
    assert [model_task(m) for m in profile.models] == ["image-classification", "causal-lm"]
    assert [(s.resolution, s.seq_len) for s in expand(profile)] == [(32, None), (None, 16)]
    assert load_model(profile.models[1], "cpu").task == "causal-lm"


def test_a_new_source_checks_its_refs_and_is_offered_in_the_one_of_message(zoo):
    with pytest.raises(ProfileError, match="no zoo model 'zoo/speech'"):
        parse_profile("name: t\nmodels: [zoo/speech]\n")
    with pytest.raises(ProfileError, match="exactly one of demo:, hf:, path:, factory:, onnx:, "
                       "torchvision:, timm: or zoo:"):
        parse_profile("name: t\nmodels: [{task: causal-lm}]\n")


def test_the_built_in_sources_keep_their_keys_and_bare_string_rules():
    profile = parse_profile("name: t\nmodels: [demo/tiny-bert-random, org/model]\n")
    assert [m.source for m in profile.models] == ["demo", "hf"]
    assert [model_task(m) for m in profile.models] == ["text-classification", None]
    assert list(models.sources())[:3] == ["demo", "hf", "path"]

"""Quality figures on real models: trained tiny models, the demo models and the shipped data."""

from __future__ import annotations

import copy
import math
from pathlib import Path

import pytest
from energy_console.core.models import load_model
from energy_console.core.models.demo_tokenizer import DemoTokenizer
from energy_console.core.quality.evaluate import evaluate
from energy_console.core.quality.reference import prepare_reference
from energy_console.core.quality.result import QUALITY_CSV_COLUMNS
from energy_console.core.session.plan import expand
from energy_console.core.session.profile_check import parse_profile

from tests.trained_models import SEQ_LEN, shared_keyword_classifier

DATA = Path(__file__).resolve().parent.parent / "data"


def run_spec(model_yaml: str, base_dir: Path, batch_size: int = 8, size: int = SEQ_LEN):
    """The baseline RunSpec of a one-model profile, as the session would plan it."""
    text = (
        f"name: quality-test\nmodels:\n{model_yaml}\ntechniques: [baseline]\n"
        f"inputs: {{batch_sizes: [{batch_size}], sequence_lengths: [{size}], "
        f"resolutions: [{size}]}}\n"
    )
    return expand(parse_profile(text, base_dir=str(base_dir)), device="cpu")[0]


def prune_linear_weights(module, fraction: float = 0.9):
    """A copy with the smallest `fraction` of every Linear layer's weights set to zero."""
    import torch

    pruned = copy.deepcopy(module)
    with torch.no_grad():
        for layer in pruned.modules():
            if isinstance(layer, torch.nn.Linear):
                weight = layer.weight
                threshold = weight.abs().flatten().kthvalue(int(fraction * weight.numel())).values
                weight[weight.abs() <= threshold] = 0.0
    return pruned


@pytest.fixture(scope="module")
def trained_classifier(tmp_path_factory) -> Path:
    return shared_keyword_classifier(tmp_path_factory)


def classifier_spec(folder: Path, batch_size: int = 8):
    model_yaml = f"  - path: {folder / 'model'}\n    dataset: eval.csv"
    return run_spec(model_yaml, folder, batch_size)


def test_trained_classifier_baseline_is_accurate_and_faithful(trained_classifier, tmp_path):
    spec = classifier_spec(trained_classifier)
    loaded = load_model(spec.model, "cpu")
    reference = prepare_reference(loaded, spec, tmp_path)
    result = evaluate(loaded, loaded.module, reference, None)
    assert result.metric == "accuracy"
    assert result.value == result.accuracy > 0.9
    assert result.macro_f1 > 0.9
    assert result.top1_agreement == 1.0
    assert result.mean_kl == pytest.approx(0.0, abs=1e-6)
    assert result.cosine_similarity == pytest.approx(1.0, abs=1e-5)
    assert result.samples == 96
    assert result.dataset == str(trained_classifier / "eval.csv")


def test_heavily_pruned_classifier_loses_fidelity(trained_classifier, tmp_path):
    spec = classifier_spec(trained_classifier)
    loaded = load_model(spec.model, "cpu")
    reference = prepare_reference(loaded, spec, tmp_path)
    baseline = evaluate(loaded, loaded.module, reference, None)
    pruned = evaluate(loaded, prune_linear_weights(loaded.module), reference, None)
    assert pruned.top1_agreement < baseline.top1_agreement
    assert pruned.mean_kl > 0.01
    assert pruned.cosine_similarity < baseline.cosine_similarity
    assert pruned.accuracy < baseline.accuracy


def test_reference_is_cached_per_model_and_input_set(trained_classifier, tmp_path):
    import torch

    spec = classifier_spec(trained_classifier)
    loaded = load_model(spec.model, "cpu")
    first = prepare_reference(loaded, spec, tmp_path)
    again = prepare_reference(loaded, spec, tmp_path)
    other_batch = prepare_reference(loaded, classifier_spec(trained_classifier, 4), tmp_path)
    assert not first.cache_hit and again.cache_hit and not other_batch.cache_hit
    assert torch.equal(first.baseline["logits"], again.baseline["logits"])
    assert len(list(tmp_path.glob("quality-reference-*.pt"))) == 2
    assert not list(tmp_path.glob(".*tmp"))


def test_cached_reference_stays_the_uncompressed_models(trained_classifier, tmp_path):
    """A later run loads the baseline outputs from the cache, whatever module it then scores."""
    spec = classifier_spec(trained_classifier)
    loaded = load_model(spec.model, "cpu")
    prepare_reference(loaded, spec, tmp_path)
    pruned_loaded = copy.copy(loaded)
    pruned_loaded.module = prune_linear_weights(loaded.module)
    later = prepare_reference(loaded, spec, tmp_path)
    result = evaluate(pruned_loaded, pruned_loaded.module, later, None)
    assert later.cache_hit
    assert result.top1_agreement < 1.0


def test_result_gives_runs_csv_columns_and_its_own_seconds(trained_classifier, tmp_path):
    spec = classifier_spec(trained_classifier)
    loaded = load_model(spec.model, "cpu")
    result = evaluate(loaded, loaded.module, prepare_reference(loaded, spec, tmp_path), None)
    columns = result.csv_columns()
    assert tuple(columns) == QUALITY_CSV_COLUMNS
    assert columns["quality_metric"] == "accuracy"
    assert columns["fidelity_top1"] == 1.0
    assert columns["quality_samples"] == 96
    assert result.seconds > 0
    assert result.to_dict()["accuracy"] == result.accuracy


@pytest.fixture(scope="module")
def trained_lm(tmp_path_factory) -> Path:
    """A tiny GPT-2 trained briefly on the shipped text, saved with the demo tokenizer."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    folder = tmp_path_factory.mktemp("lm")
    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config(vocab_size=1024, n_embd=64, n_layer=1, n_head=2,
                                       n_positions=64))
    tokenizer = DemoTokenizer(1024)
    ids = tokenizer((DATA / "text-mini.txt").read_text(), add_special_tokens=False)["input_ids"]
    windows = torch.tensor(ids[: len(ids) // 32 * 32]).view(-1, 32)
    optimiser = torch.optim.AdamW(model.parameters(), lr=5e-3)
    model.train()
    for _step in range(60):
        batch = windows[torch.randint(0, len(windows), (8,))]
        loss = model(input_ids=batch, labels=batch).loss
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    model.save_pretrained(folder / "model")
    tokenizer.save_pretrained(folder / "model")
    return folder


@pytest.mark.session  # trains a small LM first: the slow tier
def test_perplexity_is_finite_and_rises_under_heavy_pruning(trained_lm, tmp_path):
    model_yaml = f"  - path: {trained_lm / 'model'}\n    dataset: {DATA / 'text-mini.txt'}"
    spec = run_spec(model_yaml, trained_lm, batch_size=4, size=32)
    loaded = load_model(spec.model, "cpu")
    reference = prepare_reference(loaded, spec, tmp_path)
    baseline = evaluate(loaded, loaded.module, reference, None)
    pruned = evaluate(loaded, prune_linear_weights(loaded.module, 0.95), reference, None)
    assert baseline.metric == "perplexity"
    assert math.isfinite(baseline.perplexity) and 1.0 < baseline.perplexity < 1024
    assert baseline.next_token_agreement == 1.0
    assert baseline.mean_kl == pytest.approx(0.0, abs=1e-3)
    assert pruned.perplexity > baseline.perplexity * 1.2
    assert pruned.next_token_agreement < 1.0
    assert pruned.mean_kl > baseline.mean_kl
    assert baseline.samples == len(DemoTokenizer(1024)(
        (DATA / "text-mini.txt").read_text(), add_special_tokens=False)["input_ids"]) // 32


def test_demo_models_without_dataset_score_fidelity_on_synthetic_inputs(tmp_path):
    import torch

    spec = run_spec("  - demo/tiny-bert-random", tmp_path, batch_size=2, size=16)
    loaded = load_model(spec.model, "cpu")
    reference = prepare_reference(loaded, spec, tmp_path)
    baseline = evaluate(loaded, loaded.module, reference, None)
    bf16 = evaluate(loaded, copy.deepcopy(loaded.module).to(torch.bfloat16), reference,
                    torch.bfloat16)
    assert baseline.metric == "top1_agreement" and baseline.value == 1.0
    assert baseline.dataset is None and baseline.accuracy is None
    assert baseline.samples == 8
    assert 0.9 < bf16.cosine_similarity < 1.0


def test_causal_lm_without_dataset_scores_next_token_agreement(tmp_path):
    spec = run_spec("  - demo/tiny-gpt2-random", tmp_path, batch_size=1, size=16)
    loaded = load_model(spec.model, "cpu")
    reference = prepare_reference(loaded, spec, tmp_path)
    result = evaluate(loaded, prune_linear_weights(loaded.module, 0.95), reference, None)
    assert result.metric == "next_token_agreement"
    assert result.perplexity is None
    assert 0.0 <= result.value < 1.0
    assert result.mean_kl > 0


@pytest.mark.session  # every demo model over its whole shipped dataset: the slow tier
@pytest.mark.parametrize(
    ("model_yaml", "size", "samples", "metric"),
    [
        ("  - demo: demo/tiny-bert-random\n    dataset: sentiment-mini.csv", 32, 160, "accuracy"),
        ("  - demo: demo/tiny-gpt2-random\n    dataset: text-mini.txt", 64, 16, "perplexity"),
        ("  - demo: demo/tiny-resnet-random\n    dataset: {path: images-mini, label_map: "
         "images-mini/label_map.json}", 32, 30, "accuracy"),
        ("  - demo: demo/tiny-vit-random\n    dataset: {path: images-mini, label_map: "
         "images-mini/label_map.json}", 64, 30, "accuracy"),
    ],
)
def test_demo_models_score_on_shipped_data(model_yaml, size, samples, metric, tmp_path):
    spec = run_spec(model_yaml, DATA, batch_size=4, size=size)
    loaded = load_model(spec.model, "cpu")
    result = evaluate(loaded, loaded.module, prepare_reference(loaded, spec, tmp_path), None)
    assert result.metric == metric
    assert result.samples == samples
    assert math.isfinite(result.value) and result.value >= 0
    assert result.csv_columns()["fidelity_top1"] == 1.0

"""Quality figures through a real session: a trained classifier from a save_pretrained folder."""

from __future__ import annotations

import csv

import pytest
from energy_console.core.session.profile_check import load_profile
from energy_console.core.session.runner import Runner

from tests.session_helpers import write_profile
from tests.trained_models import shared_keyword_classifier

# real runner sessions: the slow tier (pytest -m "not session" skips them)
pytestmark = pytest.mark.session


@pytest.fixture(scope="module")
def quality_session(tmp_path_factory):
    trained = shared_keyword_classifier(tmp_path_factory)
    folder = tmp_path_factory.mktemp("quality")
    profile = load_profile(write_profile(folder, f"""\
models:
  - path: {trained / "model"}
    dataset: {trained / "eval.csv"}
  - path: {trained / "model"}
    dataset: missing.csv
techniques: [baseline, {{magnitude-prune: {{amount: 0.9, scope: layer}}}}]
inputs: {{batch_sizes: [4], sequence_lengths: [16]}}
"""))
    outcome = Runner(profile, folder / "session").run()
    with (outcome.path / "runs.csv").open() as f:
        return outcome, {r["run_id"]: r for r in csv.DictReader(f)}


def test_the_trained_baseline_is_accurate_and_faithful_to_itself(quality_session):
    _, rows = quality_session
    base = rows["model-1__baseline__b4-s16"]
    assert base["status"] == "finished"
    assert base["quality_metric"] == "accuracy"
    assert float(base["quality_value"]) > 0.9
    assert float(base["fidelity_top1"]) == 1.0
    assert int(base["quality_samples"]) == 96


def test_heavy_pruning_shows_as_lost_fidelity(quality_session):
    _, rows = quality_session
    pruned = rows["model-1__magnitude-prune-amount0.9-scopelayer__b4-s16"]
    assert pruned["status"] == "finished"
    assert float(pruned["fidelity_top1"]) < 1.0
    assert float(pruned["fidelity_kl"]) > 0.0
    base = rows["model-1__baseline__b4-s16"]
    assert int(pruned["nonzero_params"]) < int(base["nonzero_params"])
    assert pruned["params"] == base["params"]  # unstructured pruning zeroes, it does not remove


def test_a_missing_dataset_fails_its_runs_with_the_fix_and_the_session_goes_on(quality_session):
    outcome, rows = quality_session
    for technique in ("baseline", "magnitude-prune-amount0.9-scopelayer"):
        row = rows[f"model-2__{technique}__b4-s16"]
        assert row["status"] == "failed"
        assert "missing.csv" in row["reason"] and "does not exist" in row["reason"]
        assert not row["reason"].startswith("DatasetError")
    assert outcome.finished == 2 and outcome.failed == 2

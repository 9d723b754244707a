"""Training through a real session: the train workload on the shipped data, prune → finetune and
QAT on the trained classifier of the tests, break-even, saved models, and MLflow read back."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from energy_console.core.analysis.compare import training_comparisons
from energy_console.core.session.profile_check import load_profile
from energy_console.core.session.runner import Runner
from energy_console.core.store.session_dir import read_runs

from tests.session_helpers import write_profile
from tests.trained_models import shared_keyword_classifier, write_training_set

# real runner sessions: the slow tier (pytest -m "not session" skips them)
pytestmark = pytest.mark.session

ROOT = Path(__file__).resolve().parent.parent
WARMUP, STEPS_PER_WINDOW, REPEATS, BATCH = 5, 10, 4, 8
PRUNE = "magnitude-prune-amount0.8"
FINETUNE = f"{PRUNE}+finetune-steps12"
QAT = "qat-steps8"

PROTOCOL = f"""\
protocol:
  idle_seconds: 0.3
  warmup: {WARMUP}
  iterations: {STEPS_PER_WINDOW}
  repeats: {REPEATS}
  sample_hz: 20
  threads: 1
save_models: true
mlflow: true
"""


@pytest.fixture(scope="module")
def train_session(tmp_path_factory):
    """Every technique on the trained classifier (inference runs, MLflow on)."""
    trained = shared_keyword_classifier(tmp_path_factory)
    folder = tmp_path_factory.mktemp("train")
    write_training_set(folder)
    profile = load_profile(write_profile(folder, f"""\
models:
  - path: {trained / "model"}
    task: text-classification
    dataset: {trained / "eval.csv"}
    training: {{dataset: {folder / "train.csv"}, lr: 0.003}}
techniques:
  - baseline
  - {{magnitude-prune: {{amount: 0.8}}}}
  - {{chain: [{{magnitude-prune: {{amount: 0.8}}}}, {{finetune: {{steps: 12}}}}]}}
  - {{qat: {{steps: 8}}}}
  - static-int8
inputs: {{batch_sizes: [{BATCH}], sequence_lengths: [32]}}
""", protocol=PROTOCOL))
    outcome = Runner(profile, folder / "session").run()
    rows = {r.run_id: r for r in read_runs(outcome.path)}
    return outcome, rows


@pytest.fixture(scope="module")
def train_run(tmp_path_factory):
    """A train run of the demo BERT on the shipped data: a session of its own, as the techniques
    above would each be one more train run (or a skip) in the same session."""
    folder = tmp_path_factory.mktemp("train-workload")
    profile = load_profile(write_profile(folder, f"""\
models:
  - demo: demo/tiny-bert-random
    workload: train
    dataset: {ROOT / "data" / "sentiment-mini.csv"}
    training: {{lr: 0.002}}
techniques: [baseline]
inputs: {{batch_sizes: [{BATCH}], sequence_lengths: [32]}}
""", protocol=PROTOCOL.replace("save_models: true\nmlflow: true\n", "")))
    outcome = Runner(profile, folder / "session").run()
    (record,) = read_runs(outcome.path)
    return outcome, record


def row(rows, model: str, technique: str):
    return rows[f"{model}__{technique}__b{BATCH}-s32"]


def test_a_train_run_gives_energy_per_step_with_its_interval_and_its_loss_falls(train_run):
    _, r = train_run
    assert r.status == "finished", r.reason
    assert r.workload == "train" and r.iterations == STEPS_PER_WINDOW
    assert r.train_steps == WARMUP + STEPS_PER_WINDOW * REPEATS
    assert r.energy_j_per_step > 0 and r.energy_j_per_step_ci95 > 0
    # every window ran exactly its steps of full batches: per step = per sample × batch
    assert r.energy_j_per_step == pytest.approx(r.energy_j_per_inference * BATCH, rel=1e-3)
    assert r.train_energy_j == pytest.approx(r.energy_j_per_step * r.train_steps, rel=1e-3)
    assert r.train_energy_j_ci95 == pytest.approx(r.energy_j_per_step_ci95 * r.train_steps,
                                                  rel=1e-3)
    assert r.train_samples_per_s > 0 and r.peak_mem_mb > 0
    assert r.train_loss_end < r.train_loss_start
    assert r.quality_metric == "accuracy" and 0.0 <= r.quality_value <= 1.0
    assert r.quality_samples == 40  # sentiment-mini's held-out quarter, never trained on


def test_a_train_run_keeps_every_step_loss_and_shows_its_steps_live(train_run):
    outcome, record = train_run
    run_id = record.run_id
    result = json.loads((outcome.path / "runs" / run_id / "result.json").read_text())
    assert len(result["training"]["losses"]) == WARMUP + STEPS_PER_WINDOW * REPEATS
    events = [json.loads(line) for line in (outcome.path / "events.jsonl").read_text().splitlines()]
    steps = [e for e in events if e.get("run_id") == run_id and e.get("phase") == "train-step"]
    assert steps and all(e["loss"] > 0 and e["steps"] == WARMUP + STEPS_PER_WINDOW * REPEATS
                         for e in steps)


def test_prune_then_finetune_recovers_accuracy_against_plain_prune(train_session):
    _, rows = train_session
    pruned, tuned = row(rows, "model", PRUNE), row(rows, "model", FINETUNE)
    assert tuned.status == "finished", tuned.reason
    assert tuned.quality_value > pruned.quality_value
    assert tuned.untrained_technique == PRUNE
    assert tuned.train_steps == 12 and tuned.train_energy_j > 0
    assert tuned.train_loss_end < tuned.train_loss_start
    assert tuned.nonzero_params == pytest.approx(pruned.nonzero_params, rel=0.01)  # zeros kept


def test_qat_runs_end_to_end_on_cpu_with_the_x86_or_fbgemm_engine(train_session):
    outcome, rows = train_session
    qat, base = row(rows, "model", QAT), row(rows, "model", "baseline")
    assert qat.status == "finished", qat.reason
    assert qat.untrained_technique == "static-int8" and qat.train_steps == 8
    assert qat.size_bytes < base.size_bytes and qat.quality_metric == "accuracy"
    result = json.loads((outcome.path / "runs" / qat.run_id / "result.json").read_text())
    assert result["technique"]["qat_engine"] in ("x86", "fbgemm")


def test_every_variant_with_a_training_cost_has_a_break_even_and_a_gain(train_session):
    _, rows = train_session
    trained = [r for r in rows.values() if r.train_energy_j is not None and r.workload == "infer"]
    compared = training_comparisons(list(rows.values()))
    assert {r.run_id for r in trained} == set(compared) and len(trained) == 2
    for r in trained:
        even, gain = compared[r.run_id]
        assert even is not None and even.train_energy_j == r.train_energy_j
        base = row(rows, "model", "baseline")
        saving = base.energy_j_per_inference - r.energy_j_per_inference
        if saving > 0:
            assert even.inferences == pytest.approx(r.train_energy_j / saving)
        else:
            assert even.inferences is None
        assert gain is not None and gain.untrained.technique == r.untrained_technique


def test_a_saved_fine_tuned_model_is_a_model_folder_a_later_profile_can_name(train_session):
    outcome, rows = train_session
    from energy_console.core.models import load_model
    from energy_console.core.session.profile_check import parse_profile

    tuned = row(rows, "model", FINETUNE)
    folder = outcome.path / tuned.saved_model
    assert tuned.saved_model_bytes == sum(f.stat().st_size for f in folder.rglob("*"))
    entry = parse_profile(f"name: later\nmodels:\n  - path: {folder}\n    task: "
                          "text-classification\n").models[0]
    loaded = load_model(entry, "cpu")
    weights = loaded.module.classifier.weight
    assert float((weights == 0).float().mean()) > 0.5  # the pruned, fine-tuned variant


def test_mlflow_holds_every_run_with_the_params_and_metrics_of_runs_csv(train_session,
                                                                          monkeypatch):
    mlflow = pytest.importorskip("mlflow")
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # MLflow 3's switch for file stores
    from energy_console.core.session.tracking import experiment_name, run_metrics, run_params

    outcome, rows = train_session
    mlflow.set_tracking_uri((outcome.path / "mlruns").as_uri())
    found = mlflow.search_runs(experiment_names=[experiment_name("t")], output_format="list")
    children = {r.data.tags["energy_console.run_id"]: r for r in found
                if "mlflow.parentRunId" in r.data.tags}
    assert set(children) == set(rows)
    for run_id, record in rows.items():
        data = children[run_id].data
        assert data.params == run_params(record)
        assert data.metrics == pytest.approx(run_metrics(record), rel=1e-5)  # csv: 6 digits
    finished = next(r for r in rows.values() if r.finished)
    artifacts = {Path(a.path).name for a in mlflow.MlflowClient().list_artifacts(
        children[finished.run_id].info.run_id)}
    assert {"result.json", "latency.csv"} <= artifacts


def test_an_unreachable_mlflow_server_is_a_notice_and_logging_goes_quiet(tmp_path, monkeypatch):
    pytest.importorskip("mlflow")  # importing it takes seconds here: this tier, not the fast one
    from energy_console.core.session.tracking import MlflowTracker
    from energy_console.core.store.records import RunRecord

    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")  # nothing listens there
    notices: list[str] = []
    tracker = MlflowTracker(tmp_path, "t", notices.append)
    tracker.start()
    tracker.log(RunRecord(run_id="r"), tmp_path)
    tracker.finish("completed")
    assert len(notices) == 1 and "MLflow at http://127.0.0.1:9 failed" in notices[0]
    assert "goes on without MLflow tracking" in notices[0]


def test_quanto_qat_trains_int8_weights_and_freezes_them(train_session, tmp_path_factory):
    pytest.importorskip("optimum.quanto")
    from energy_console.core.compression import (
        TechniqueContext,
        apply_technique,
        parse_technique,
        untrained_variant,
    )
    from energy_console.core.models import load_model
    from energy_console.core.session.plan import expand
    from energy_console.core.worker.workloads.training import CompressionTrainer

    outcome, _ = train_session
    folder = outcome.path.parent
    trained = shared_keyword_classifier(tmp_path_factory)
    spec = expand(load_profile(write_profile(folder, f"""\
models:
  - path: {trained / "model"}
    task: text-classification
    dataset: {trained / "eval.csv"}
    training: {{dataset: {folder / "train.csv"}, lr: 0.003}}
inputs: {{batch_sizes: [{BATCH}], sequence_lengths: [16]}}
""", name="quanto")), "cpu")[0]
    loaded = load_model(spec.model, "cpu")
    marks: list[dict] = []
    trainer = CompressionTrainer(loaded, spec, "cpu", lambda phase, **f: marks.append(f))
    ctx = TechniqueContext(device="cpu", task=loaded.task, loaded=loaded,
                           calibration_inputs=list, train=trainer)
    technique = parse_technique({"weight-int8-qat": {"steps": 4}})
    module = apply_technique(loaded.module, technique, ctx)
    assert type(module.classifier).__name__ == "QLinear"
    assert trainer.timings.total_steps == 4 and sum(trainer.timings.steps) == 4
    assert trainer.timings.loss_end < trainer.timings.loss_start
    assert sum(1 for m in marks if m.get("edge") == "start") == trainer.timings.windows
    assert untrained_variant(technique).slug == "weight-int8"

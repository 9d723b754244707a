"""Object detection through a real session: a demo detector on the shipped COCO-format set,
every variant of the mobile quantization study, and the detectors this machine cannot run."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest
import torch
from energy_console.core.models import load_model
from energy_console.core.session.profile_check import load_profile
from energy_console.core.session.runner import Runner
from energy_console.core.spec.profile import ModelEntry
from energy_console.core.worker.workloads.detection_pipeline import DetectionPipeline

from tests.session_helpers import write_profile

pytestmark = pytest.mark.session  # real runner sessions, exports: the slow tier

ROOT = Path(__file__).resolve().parent.parent
VARIANTS = ("onnx-fp32", "onnx-qdq-int8", "onnx-fp16", "onnx-qdq-16x8")


@pytest.fixture(scope="module")
def detection_session_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("detection")
    shutil.copytree(ROOT / "data" / "shapes-detect", folder / "shapes")
    profile = load_profile(write_profile(folder, f"""\
models:
  - demo: demo/tiny-yolos-random
    dataset: {{path: shapes/instances.json, max_samples: 8}}
  - demo/ssdlite320-mobilenet-v3-random
techniques: [baseline, {", ".join(VARIANTS)}]
inputs: {{batch_sizes: [1], resolutions: [64]}}
"""))
    return Runner(profile, folder / "session").run().path


@pytest.fixture(scope="module")
def detection_session(detection_session_dir):
    with (detection_session_dir / "runs.csv").open() as f:
        return {r["run_id"]: r for r in csv.DictReader(f)}


def test_the_study_report_compares_onnx_variants_with_onnx_fp32(detection_session_dir):
    """The documented baseline of the onnx-* variants is onnx-fp32 (the same runtime), never
    the torch baseline; the report says which baseline each runtime has."""
    from energy_console.core.analysis.compare import changes_vs_baseline
    from energy_console.core.analysis.report import format_report
    from energy_console.core.store.follow import read_session

    session = read_session(detection_session_dir)
    runs = {r.technique: r for r in session.runs if r.model == "demo/tiny-yolos-random"}
    change = changes_vs_baseline(list(session.runs))[runs["onnx-qdq-int8"].run_id]
    energy = change["energy_j_per_inference"]
    assert energy.fraction == pytest.approx(runs["onnx-qdq-int8"].energy_j_per_inference
                                            / runs["onnx-fp32"].energy_j_per_inference - 1)
    text = " ".join(format_report(session, width=200).split())
    assert "changes against baseline (torch), onnx-fp32 (onnxruntime)" in text


def test_a_variant_onnx_runtime_cannot_run_is_skipped_with_the_reason(tmp_path):
    profile = load_profile(write_profile(tmp_path, """\
models: [demo/tiny-rtdetr-random]
techniques: [onnx-qdq-int8]
inputs: {batch_sizes: [1], resolutions: [64]}
"""))
    outcome = Runner(profile, tmp_path / "session").run()
    with (outcome.path / "runs.csv").open() as f:
        (row,) = csv.DictReader(f)
    assert row["status"] == "skipped"
    assert "ONNX export of this model computes other" in row["reason"]


def yolos(rows, technique):
    return rows[f"tiny-yolos-random__{technique}__b1-r64"]


def test_the_baseline_scores_map_and_is_faithful_to_itself(detection_session):
    base = yolos(detection_session, "baseline")
    assert base["status"] == "finished", base["reason"]
    assert (base["task"], base["runtime"], base["quality_metric"]) == \
        ("object-detection", "torch", "map")
    assert float(base["fidelity_map"]) == 1.0
    assert 0.0 <= float(base["quality_map"]) <= float(base["quality_map_50"]) <= 1.0
    assert float(base["detections_per_image"]) > 0
    assert int(base["quality_samples"]) == 8


def test_every_onnx_variant_has_energy_map_and_fidelity(detection_session):
    for technique in VARIANTS:
        row = yolos(detection_session, technique)
        assert row["status"] == "finished", (technique, row["reason"])
        assert row["runtime"] == "onnxruntime"
        assert float(row["energy_j_per_inference"]) > 0
        assert row["energy_j_per_inference_ci95"] != ""
        assert float(row["latency_ms_p50"]) > 0 and float(row["peak_mem_mb"]) > 0
        assert row["quality_map"] != "" and row["quality_map_50"] != ""
        assert 0.0 <= float(row["fidelity_map"]) <= 1.0


def test_the_fp32_export_keeps_the_boxes_and_quantization_shrinks_the_model(detection_session):
    fp32 = yolos(detection_session, "onnx-fp32")
    assert float(fp32["fidelity_map"]) >= 0.99
    for technique in ("onnx-qdq-int8", "onnx-fp16", "onnx-qdq-16x8"):
        assert int(yolos(detection_session, technique)["size_bytes"]) < \
            0.6 * int(fp32["size_bytes"])


def torchvision_loads() -> bool:
    try:
        import torchvision.models.detection  # noqa: F401

        torch.ops.torchvision.nms  # noqa: B018
    except Exception:
        return False
    return True


def test_a_detector_or_variant_the_backend_cannot_run_is_skipped_with_the_reason(
        detection_session):
    rows = {t: detection_session[f"ssdlite320-mobilenet-v3-random__{t}__b1-r64"]
            for t in ("baseline", *VARIANTS)}
    if not torchvision_loads():  # here: every run of it skipped, the reason says why
        for row in rows.values():
            assert row["status"] == "skipped"
            assert "torchvision cannot be used here" in row["reason"]
        return
    assert rows["baseline"]["status"] == "finished"  # a box whose torchvision loads
    for technique in VARIANTS:
        assert rows[technique]["status"] == "skipped"
        assert "torchvision detector" in rows[technique]["reason"]


def test_a_demo_detector_runs_the_whole_pipeline():
    loaded = load_model(ModelEntry(ref="demo/tiny-yolos-random", source="demo"), "cpu")
    pipeline = DetectionPipeline(loaded.module, loaded.detection_head, 64, "cpu")
    with torch.no_grad():
        found = pipeline([torch.zeros(3, 128, 96, dtype=torch.uint8)])
    assert loaded.task == "object-detection" and len(found) == 1
    boxes = found[0].boxes
    assert 0 < len(boxes) <= 20 and (found[0].scores >= 0.05).all()
    assert boxes.shape[1] == 4 and found[0].labels.max() < 3

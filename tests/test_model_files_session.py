"""Models from where researchers keep them, through one real session: a lab's own nn.Module
class with its state-dict file (`factory:`), and an ONNX file (`onnx:`) exported here from a
demo model and run by onnxruntime."""

from __future__ import annotations

import csv

import pytest
from energy_console.core.session.profile_check import load_profile
from energy_console.core.session.runner import Runner

from tests.factory_models import class_names, train_small_cnn
from tests.session_helpers import ROOT, write_profile

# real runner sessions: the slow tier (pytest -m "not session" skips them)
pytestmark = pytest.mark.session

TORCH_TECHNIQUES = ("baseline", "dynamic-int8", "magnitude-prune-amount0.5",
                    "magnitude-prune-amount0.5+dynamic-int8")


def export_demo_resnet(path) -> None:
    """demo/tiny-resnet-random as an ONNX file, through the project's own exporter."""
    import torch
    from energy_console.core.compression.onnx_graph import export_fp32
    from energy_console.core.models.demo import DEMO_MODELS

    torch.manual_seed(0)
    module = DEMO_MODELS["demo/tiny-resnet-random"].build().eval()
    exported, _, _ = export_fp32(module, {"pixel_values": torch.randn(1, 3, 32, 32)},
                                 str(path.parent))
    (path.parent / exported).rename(path)


@pytest.fixture(scope="module")
def files_session(tmp_path_factory):
    """Two sessions, one per file kind, so that no run is made only to be skipped: the factory
    model with the torch techniques, the ONNX file with the graph techniques and two torch
    techniques (one of each family, the prune in a chain) that its runs must refuse."""
    folder = tmp_path_factory.mktemp("model-files")
    train_small_cnn(folder / "small_cnn.pt")
    export_demo_resnet(folder / "resnet.onnx")
    images = ROOT / "data" / "images-mini"
    torch_profile = load_profile(write_profile(folder, f"""\
models:
  - factory: tests.factory_models:SmallCNN
    kwargs: {{num_classes: 10}}
    weights: small_cnn.pt
    task: image-classification
    input_shape: [3, 32, 32]
    labels: {class_names()}
    dataset: {images}
techniques: [baseline, dynamic-int8, {{magnitude-prune: {{amount: 0.5}}}},
             {{chain: [{{magnitude-prune: {{amount: 0.5}}}}, dynamic-int8]}}]
inputs: {{batch_sizes: [10], resolutions: [32]}}
""", name="torch"))
    onnx_profile = load_profile(write_profile(folder, f"""\
models:
  - onnx: resnet.onnx
    dataset: {{path: {images}, label_map: {images / "label_map.json"}}}
techniques: [dynamic-int8, {{chain: [{{magnitude-prune: {{amount: 0.5}}}}, dynamic-int8]}},
             onnx-fp32, onnx-int8]
inputs: {{batch_sizes: [10], resolutions: [32]}}
save_models: true
""", name="onnx"))
    rows = {}
    for profile in (torch_profile, onnx_profile):
        outcome = Runner(profile, folder / f"session-{profile.name}").run()
        with (outcome.path / "runs.csv").open() as f:
            rows |= {r["run_id"]: r for r in csv.DictReader(f)}
    return rows | {"session": {"path": str(outcome.path)}}  # the ONNX file's: its saved models


def row(rows, model: str, technique: str) -> dict:
    return rows[f"{model}__{technique}__b10-r32"]


def test_the_factory_model_loads_its_state_dict_and_is_accurate_on_the_shipped_images(
        files_session):
    base = row(files_session, "SmallCNN", "baseline")
    assert base["status"] == "finished", base["reason"]
    assert base["quality_metric"] == "accuracy"
    assert float(base["quality_value"]) > 0.8  # trained weights, not the callable's random ones
    assert int(base["quality_samples"]) == 30
    assert base["runtime"] == "torch"


def test_every_torch_technique_measures_the_factory_model_with_fidelity(files_session):
    base = row(files_session, "SmallCNN", "baseline")
    for technique in TORCH_TECHNIQUES[1:]:
        measured = row(files_session, "SmallCNN", technique)
        assert measured["status"] == "finished", (technique, measured["reason"])
        assert float(measured["energy_j_per_inference"]) > 0
        assert 0.0 <= float(measured["fidelity_top1"]) <= 1.0
    pruned = row(files_session, "SmallCNN", TORCH_TECHNIQUES[2])
    assert int(pruned["nonzero_params"]) < int(base["nonzero_params"])
    quantized = row(files_session, "SmallCNN", "dynamic-int8")
    assert int(quantized["size_bytes"]) < int(base["size_bytes"])  # its Linear layers in int8


def test_the_onnx_file_runs_in_onnxruntime_and_int8_keeps_fidelity_to_the_fp32_graph(
        files_session):
    fp32 = row(files_session, "resnet.onnx", "onnx-fp32")
    int8 = row(files_session, "resnet.onnx", "onnx-int8")
    for measured in (fp32, int8):
        assert measured["status"] == "finished", measured["reason"]
        assert measured["runtime"] == "onnxruntime"
        assert float(measured["energy_j_per_inference"]) > 0
        assert measured["quality_metric"] == "accuracy"
    assert float(fp32["fidelity_top1"]) == 1.0  # the graph as loaded is the reference
    assert 0.5 <= float(int8["fidelity_top1"]) <= 1.0
    assert int(int8["size_bytes"]) < int(fp32["size_bytes"])


def test_torch_techniques_on_an_onnx_file_are_skipped_with_the_reason(files_session):
    for technique in (TORCH_TECHNIQUES[1], TORCH_TECHNIQUES[3]):  # quantize; prune, in a chain
        skipped = row(files_session, "resnet.onnx", technique)
        assert skipped["status"] == "skipped"
        assert "ONNX graph run by onnxruntime" in skipped["reason"]
        assert "onnx-int8" in skipped["reason"]


def test_a_saved_onnx_variant_loads_back_through_the_onnx_source(files_session):
    from pathlib import Path

    from energy_console.core.models import load_model
    from energy_console.core.session.profile_check import parse_profile

    int8 = row(files_session, "resnet.onnx", "onnx-int8")
    saved = Path(files_session["session"]["path"]) / int8["saved_model"] / "model.onnx"
    entry = parse_profile(f"name: t\nmodels: [{saved}]\n").models[0]
    loaded = load_model(entry, "cpu")
    assert loaded.task == "image-classification" and loaded.runtime == "onnxruntime"
    assert saved.stat().st_size == int(int8["size_bytes"])

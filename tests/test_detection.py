"""Object detection without a runner: the COCO JSON reader, NMS and the timed pipeline's steps,
the demo detectors, and the ONNX variants' refusals."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
from energy_console.core.models import load_model
from energy_console.core.models.base import NotApplicable
from energy_console.core.quality.coco import check_detection_dataset, load_detection_set
from energy_console.core.quality.datasets import DatasetError, dataset_spec
from energy_console.core.quality.detection_eval import (
    DetectionImages,
    evaluate_detection,
    prepare_detection_reference,
)
from energy_console.core.spec.profile import ModelEntry
from energy_console.core.worker.workloads.detection_pipeline import (
    DetectionPipeline,
    box_iou,
    class_aware_nms,
)

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ROOT / "data" / "shapes-detect" / "instances.json"
SHAPES = {0: "circle", 1: "square", 2: "triangle"}


def test_the_shipped_set_reads_with_boxes_in_pixels_and_model_label_ids():
    found = load_detection_set(dataset_spec(str(SHIPPED)), SHAPES)
    instances = json.loads(SHIPPED.read_text())
    assert len(found.paths) == len(instances["images"]) and all(p.is_file() for p in found.paths)
    first = instances["annotations"][0]
    x, y, w, h = first["bbox"]
    name = next(c["name"] for c in instances["categories"] if c["id"] == first["category_id"])
    assert found.truth[0].boxes[0] == (x, y, x + w, y + h)
    assert SHAPES[found.truth[0].labels[0]] == name


def test_max_samples_spreads_over_the_images_and_says_so():
    found = load_detection_set(dataset_spec({"path": str(SHIPPED), "max_samples": 4}), SHAPES)
    assert len(found.paths) == 4
    assert found.warnings == ["instances.json: evaluated 4 of 24 images (max_samples 4)"]


def test_categories_the_model_lacks_name_the_label_map_fix(tmp_path):
    with pytest.raises(DatasetError, match="categories 'circle', 'square', 'triangle' are not "
                       "labels of the model.*label_map"):
        load_detection_set(dataset_spec(str(SHIPPED)), {0: "cat", 1: "dog"})
    mapped = {"path": str(SHIPPED), "label_map": {"circle": 0, "square": "dog", "triangle": 0}}
    found = load_detection_set(dataset_spec(mapped), {0: "cat", 1: "dog"})
    assert set().union(*(t.labels for t in found.truth)) == {0, 1}


def test_a_json_without_coco_lists_or_images_is_refused(tmp_path):
    bad = tmp_path / "instances.json"
    bad.write_text(json.dumps({"images": []}))
    with pytest.raises(DatasetError, match="no list annotations, categories"):
        check_detection_dataset(dataset_spec(str(bad)))
    bad.write_text(json.dumps({"images": [{"id": 1, "file_name": "a.png"}], "annotations": [],
                               "categories": []}))
    with pytest.raises(DatasetError, match="a.png listed in .* does not exist"):
        check_detection_dataset(dataset_spec(str(bad)))


def test_iou_of_known_boxes():
    import torch

    a = torch.tensor([[0.0, 0.0, 10.0, 10.0]])
    b = torch.tensor([[0.0, 0.0, 10.0, 10.0], [5.0, 0.0, 15.0, 10.0], [20.0, 20.0, 30.0, 30.0]])
    assert box_iou(a, b)[0].tolist() == pytest.approx([1.0, 50 / 150, 0.0])


def test_nms_keeps_the_best_of_overlapping_boxes_of_one_label_only():
    import torch

    boxes = torch.tensor([[0.0, 0, 10, 10], [1, 0, 11, 10], [1, 0, 11, 10], [50, 50, 60, 60]])
    scores = torch.tensor([0.9, 0.8, 0.7, 0.6])
    labels = torch.tensor([0, 0, 1, 0])  # box 2 overlaps box 0 but has another label
    assert class_aware_nms(boxes, scores, labels, 0.5).tolist() == [0, 2, 3]
    assert class_aware_nms(boxes[:0], scores[:0], labels[:0], 0.5).tolist() == []


def test_postprocess_thresholds_drops_no_object_and_scales_to_the_original_image():
    import torch

    pipeline = DetectionPipeline(None, "softmax", 32, "cpu")
    # two queries, 2 labels + no-object; query 1 is almost surely "no object"
    logits = torch.tensor([[[4.0, 0.0, 0.0], [-9.0, -9.0, 9.0]]])
    pred = torch.tensor([[[0.5, 0.5, 0.5, 0.25], [0.1, 0.1, 0.1, 0.1]]])
    image = torch.zeros(3, 100, 200, dtype=torch.uint8)  # height 100, width 200
    (found,) = pipeline.postprocess(logits, pred, [image])
    assert found.labels.tolist() == [0]
    assert found.boxes.tolist() == [[50.0, 37.5, 150.0, 62.5]]


def test_preprocess_resizes_any_image_to_the_run_resolution():
    import torch

    pipeline = DetectionPipeline(None, "softmax", 48, "cpu")
    images = [torch.full((3, 100, 60), 255, dtype=torch.uint8), torch.zeros(3, 20, 20,
                                                                        dtype=torch.uint8)]
    pixels = pipeline.preprocess(images)
    assert pixels.shape == (2, 3, 48, 48)
    assert pixels[0, 0, 0, 0].item() == pytest.approx((1.0 - 0.485) / 0.229, rel=1e-4)


def test_torchvision_detectors_are_skipped_with_the_reason_where_torchvision_cannot_load():
    try:
        import torch
        import torchvision.models.detection  # noqa: F401

        torch.ops.torchvision.nms  # noqa: B018
    except Exception:
        pass
    else:
        pytest.skip("torchvision loads here: its detectors build")
    with pytest.raises(NotApplicable, match="torchvision cannot be used here"):
        load_model(ModelEntry(ref="demo/ssdlite320-mobilenet-v3-random", source="demo"), "cpu")


def two_box_detector(offset: float = 0.0):
    """A real (tiny) detector whose queries find two fixed boxes, one per label, the second
    moved by a learnable offset: enough to score the evaluation path without a transformer."""
    import torch

    class TwoBoxDetector(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.offset = torch.nn.Parameter(torch.tensor(offset))

        def forward(self, pixel_values):
            batch = pixel_values.shape[0]
            logits = torch.tensor([[5.0, -5.0, -5.0], [-5.0, 5.0, -5.0]]).expand(batch, 2, 3)
            boxes = torch.stack([torch.tensor([0.25, 0.25, 0.2, 0.2]),
                                 torch.tensor([0.7, 0.7, 0.3, 0.3]) + self.offset])
            return SimpleNamespace(logits=logits, pred_boxes=boxes.expand(batch, 2, 4))

    return TwoBoxDetector()


def two_box_run(tmp_path, offset: float = 0.0, truth=None):
    import torch

    images = DetectionImages([torch.zeros(3, 40, 40, dtype=torch.uint8)] * 3, truth, None)
    loaded = SimpleNamespace(module=two_box_detector(), task="object-detection")
    spec = SimpleNamespace(model=ModelEntry(ref="demo/two-box", source="demo"), resolution=32,
                           batch_size=2)
    base = DetectionPipeline(loaded.module, "softmax", 32, "cpu")
    reference = prepare_detection_reference(loaded, spec, images, base, tmp_path)
    moved = base.with_module(two_box_detector(offset))
    return images, reference, evaluate_detection(moved, images, reference, spec.batch_size)


def test_without_labels_the_metric_is_fidelity_map(tmp_path):
    _, reference, same = two_box_run(tmp_path)
    assert (same.metric, same.value, same.fidelity_map) == ("fidelity_map", 1.0, 1.0)
    assert same.map is None and same.detections_per_image == 2.0 and same.samples == 3
    _, _, moved = two_box_run(tmp_path, offset=0.05)
    assert moved.fidelity_map is not None and moved.fidelity_map < 1.0


def test_with_labels_the_metric_is_map(tmp_path):
    images, reference, _ = two_box_run(tmp_path)
    truth = [d.as_truth() for d in reference.detections]
    _, _, result = two_box_run(tmp_path, truth=truth)
    assert (result.metric, result.map, result.map_50) == ("map", 1.0, 1.0)


def test_the_reference_detections_are_cached_per_session(tmp_path):
    _, first, _ = two_box_run(tmp_path)
    _, second, _ = two_box_run(tmp_path)
    assert (first.cache_hit, second.cache_hit) == (False, True)
    assert second.detections == first.detections
    assert len(list(tmp_path.glob("detection-reference-*.json"))) == 1

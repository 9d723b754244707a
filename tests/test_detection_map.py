"""The mAP path on hand-made boxes whose answer is known (core/quality/detection.py)."""

from __future__ import annotations

import pytest
from energy_console.core.quality.detection import (
    ImageBoxes,
    fidelity_map,
    mean_average_precision,
)

# Two boxes of 10 x 10 px (small) and one of 40 x 40 px (medium) in two images.
TRUTH = [
    ImageBoxes(((0, 0, 10, 10), (50, 50, 90, 90)), (1, 2)),
    ImageBoxes(((20, 20, 30, 30),), (1,)),
]


def detections_equal_to(truth: list[ImageBoxes]) -> list[ImageBoxes]:
    return [ImageBoxes(t.boxes, t.labels, tuple(0.9 - 0.1 * i for i in range(len(t))))
            for t in truth]


def test_perfect_detections_score_one_everywhere():
    scores = mean_average_precision(TRUTH, detections_equal_to(TRUTH))
    assert scores is not None
    assert (scores.map, scores.map_50, scores.map_small, scores.map_medium) == (1.0, 1.0, 1.0, 1.0)
    assert scores.map_large is None  # no ground-truth box is large


def test_one_box_shifted_scores_the_thresholds_its_iou_passes():
    # Shifted by 2 px in x and y: IoU = 8*8 / (100 + 100 - 64) = 64/136 = 0.47 < 0.5: a miss.
    # Shifted by 1 px in x only: IoU = 9*10 / (100 + 100 - 90) = 90/110 = 0.818: a hit at
    # thresholds .50 ... .80 (7 of 10), a miss at .85, .90, .95.
    truth = [ImageBoxes(((0, 0, 10, 10),), (1,))]
    shifted = [ImageBoxes(((1, 0, 11, 10),), (1,), (0.9,))]
    scores = mean_average_precision(truth, shifted)
    assert scores is not None
    assert scores.map == pytest.approx(7 / 10)
    assert scores.map_50 == 1.0


def test_one_of_two_boxes_shifted_gives_the_hand_computed_value():
    # Box a is found exactly (score 0.9), box b by a box at IoU 0.818 (score 0.8). At the 7
    # thresholds up to .80 both are hits: AP 1. At .85, .90, .95 only a: recall 0.5 at precision
    # 1, so COCO's 101-point interpolation gives 51/101. mAP = (7 + 3 * 51/101) / 10.
    truth = [ImageBoxes(((0, 0, 10, 10), (20, 0, 30, 10)), (1, 1))]
    found = [ImageBoxes(((0, 0, 10, 10), (21, 0, 31, 10)), (1, 1), (0.9, 0.8))]
    scores = mean_average_precision(truth, found)
    assert scores is not None
    assert scores.map == pytest.approx((7 + 3 * 51 / 101) / 10)


def test_a_wrong_label_is_a_miss():
    truth = [ImageBoxes(((0, 0, 10, 10),), (1,))]
    scores = mean_average_precision(truth, [ImageBoxes(((0, 0, 10, 10),), (2,), (0.9,))])
    assert scores is not None and scores.map == 0.0


def test_empty_predictions_score_zero():
    scores = mean_average_precision(TRUTH, [ImageBoxes(), ImageBoxes()])
    assert scores is not None
    assert (scores.map, scores.map_50, scores.map_small, scores.map_medium) == (0.0, 0.0, 0.0, 0.0)
    assert scores.map_large is None


def test_no_ground_truth_leaves_map_undefined():
    assert mean_average_precision([ImageBoxes()], [ImageBoxes(((0, 0, 1, 1),), (1,), (1.0,))]) \
        is None


def test_fidelity_of_detections_against_themselves_is_one():
    detections = detections_equal_to(TRUTH)
    assert fidelity_map(detections, detections) == 1.0


def test_fidelity_drops_when_a_box_is_lost():
    reference = detections_equal_to(TRUTH)
    lost = [reference[0], ImageBoxes()]
    value = fidelity_map(reference, lost)
    assert value is not None and 0.0 < value < 1.0


def test_mismatched_lengths_are_refused():
    with pytest.raises(ValueError, match="2 images of ground truth but 1"):
        mean_average_precision(TRUTH, [ImageBoxes()])
    with pytest.raises(ValueError, match="1 boxes but 0 labels"):
        ImageBoxes(((0, 0, 1, 1),), ())

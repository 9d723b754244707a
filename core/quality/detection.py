"""COCO-style mean average precision on boxes: pure functions, no model in sight.

Boxes are (x1, y1, x2, y2) in pixels of the original image. `mean_average_precision` scores
detections against ground truth with pycocotools' COCOeval (mAP@[.5:.95], mAP@.5 and the
small / medium / large breakdown, COCO's area ranges, up to 100 detections per image);
`fidelity_map` scores a compressed model's detections against the uncompressed model's, which
stand in for ground truth, so compression damage shows without labels. torchmetrics'
MeanAveragePrecision would do the same but needs torchvision, which cannot load on every box.
"""

from __future__ import annotations

import contextlib
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass

Box = tuple[float, float, float, float]  # x1, y1, x2, y2 in pixels


@dataclass(frozen=True)
class ImageBoxes:
    """The boxes of one image: ground truth (scores empty) or detections (one score each).

    `areas` are COCO's annotation areas where the dataset gives them (segment areas, which set
    the small/medium/large ranges); empty means box areas. `crowd` marks COCO's iscrowd regions
    (detections on them are neither hits nor misses); empty means none."""

    boxes: tuple[Box, ...] = ()
    labels: tuple[int, ...] = ()
    scores: tuple[float, ...] = ()
    areas: tuple[float, ...] = ()
    crowd: tuple[bool, ...] = ()

    def __post_init__(self) -> None:
        if len(self.labels) != len(self.boxes):
            raise ValueError(f"{len(self.boxes)} boxes but {len(self.labels)} labels")
        for extra, name in ((self.scores, "scores"), (self.areas, "areas"),
                            (self.crowd, "crowd flags")):
            if extra and len(extra) != len(self.boxes):
                raise ValueError(f"{len(self.boxes)} boxes but {len(extra)} {name}")

    def __len__(self) -> int:
        return len(self.boxes)

    def as_truth(self) -> ImageBoxes:
        """These boxes as ground truth (scores dropped): how fidelity-mAP reads the reference."""
        return ImageBoxes(self.boxes, self.labels, (), self.areas, self.crowd)


@dataclass(frozen=True)
class DetectionScores:
    """COCO's figures, 0-1; None where a range holds no ground-truth box (COCOeval's -1)."""

    map: float
    map_50: float
    map_75: float | None
    map_small: float | None
    map_medium: float | None
    map_large: float | None


def mean_average_precision(truth: Sequence[ImageBoxes],
                           detections: Sequence[ImageBoxes]) -> DetectionScores | None:
    """Detections scored against ground truth, image by image (same order, same length).

    None when the ground truth holds no box at all (mAP is undefined then); 0 for every range
    that has boxes when there are no detections."""
    if len(truth) != len(detections):
        raise ValueError(f"{len(truth)} images of ground truth but {len(detections)} of "
                         "detections")
    if not any(len(image) for image in truth):
        return None
    if not any(len(image) for image in detections):
        return _no_detections(truth)
    stats = _coco_stats(truth, detections)
    return DetectionScores(stats[0] or 0.0, stats[1] or 0.0, *stats[2:6])


def fidelity_map(reference: Sequence[ImageBoxes],
                 detections: Sequence[ImageBoxes]) -> float | None:
    """mAP@[.5:.95] of `detections` against the uncompressed model's detections taken as ground
    truth: 1.0 for the same boxes, lower as compression moves, drops or invents boxes. None
    when the reference detected nothing."""
    scores = mean_average_precision([image.as_truth() for image in reference], detections)
    return None if scores is None else scores.map


def _no_detections(truth: Sequence[ImageBoxes]) -> DetectionScores:
    small, medium, large = (any(low <= a < high for image in truth for a in _areas(image))
                            for low, high in AREA_RANGES)
    return DetectionScores(0.0, 0.0, 0.0, 0.0 if small else None, 0.0 if medium else None,
                           0.0 if large else None)


AREA_RANGES = ((0.0, 32.0**2), (32.0**2, 96.0**2), (96.0**2, 1e10))  # COCO's small/medium/large


def _areas(image: ImageBoxes) -> tuple[float, ...]:
    return image.areas or tuple((x2 - x1) * (y2 - y1) for x1, y1, x2, y2 in image.boxes)


def _coco_stats(truth: Sequence[ImageBoxes],
                detections: Sequence[ImageBoxes]) -> list[float | None]:
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    labels = sorted({label for image in (*truth, *detections) for label in image.labels})
    images: list[dict] = []
    annotations: list[dict] = []
    results: list[dict] = []
    for image_id, (gt, det) in enumerate(zip(truth, detections, strict=True), start=1):
        images.append({"id": image_id})
        crowd = gt.crowd or (False,) * len(gt)
        for box, label, area, is_crowd in zip(gt.boxes, gt.labels, _areas(gt), crowd,
                                              strict=True):
            annotations.append({"id": len(annotations) + 1, "image_id": image_id,
                                "category_id": label, "bbox": _xywh(box), "area": area,
                                "iscrowd": int(is_crowd)})
        for box, label, score in zip(det.boxes, det.labels, det.scores, strict=True):
            results.append({"image_id": image_id, "category_id": label, "bbox": _xywh(box),
                            "score": score})
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints its progress
        ground = COCO()
        ground.dataset = {"images": images, "annotations": annotations,
                          "categories": [{"id": label} for label in labels]}
        ground.createIndex()
        evaluation = COCOeval(ground, ground.loadRes(results), "bbox")
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    # rounded: COCOeval's sums of 101 precisions read 0.9999999999999999 for a perfect score
    return [None if v < 0 or math.isnan(v) else round(float(v), 9)
            for v in evaluation.stats[:6]]


def _xywh(box: Box) -> list[float]:
    x1, y1, x2, y2 = box
    return [float(x1), float(y1), float(x2 - x1), float(y2 - y1)]

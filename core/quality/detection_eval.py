"""A detection run's images, the uncompressed model's detections on them, and the run's scores.

The evaluation images are the model entry's COCO dataset (at most max_samples), or, without one,
8 seeded synthetic images at the run's resolution (fidelity only). The uncompressed pipeline's
detections are computed once per model, resolution, batch size and image set in a session
(cached under `cache/` as JSON) and every compressed variant is scored against them.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from energy_console.core.quality.detection import (
    ImageBoxes,
    fidelity_map,
    mean_average_precision,
)
from energy_console.core.quality.result import QualityResult

CACHE_FORMAT = 1
SYNTHETIC_IMAGES = 8
SYNTHETIC_SEED = 1000


@dataclass
class DetectionImages:
    images: list[Any]  # uint8 tensors, channels x height x width, on the CPU
    truth: list[ImageBoxes] | None  # labelled datasets only
    dataset: str | None
    warnings: list[str] = field(default_factory=list)

    def batches(self, batch_size: int, count: int) -> list[list[Any]]:
        """Up to `count` full batches from the first images on (cycling to fill the last one);
        the first is what the timed windows run."""
        needed = min(count, -(-len(self.images) // batch_size))
        return [[self.images[(b * batch_size + i) % len(self.images)] for i in range(batch_size)]
                for b in range(needed)]


@dataclass
class DetectionReference:
    detections: list[ImageBoxes]
    key: str
    cache_hit: bool
    seconds: float
    warnings: list[str] = field(default_factory=list)


def detection_images(loaded, spec) -> DetectionImages:
    import torch
    from energy_console.core.quality.coco import load_detection_set
    from energy_console.core.quality.datasets import dataset_spec, read_image

    if not spec.model.dataset:
        gen = torch.Generator().manual_seed(SYNTHETIC_SEED)
        size = (3, spec.resolution, spec.resolution)
        images = [torch.randint(0, 256, size, generator=gen, dtype=torch.uint8)
                  for _ in range(SYNTHETIC_IMAGES)]
        return DetectionImages(images, None, None)
    dataset = dataset_spec(spec.model.dataset, spec.model.base_dir)
    config = loaded.config
    id2label = ({int(k): v for k, v in config.id2label.items()} if config is not None
                else dict(enumerate(loaded.label_names or [])))
    found = load_detection_set(dataset, id2label)
    images = [(read_image(path) * 255).round().to(torch.uint8) for path in found.paths]
    return DetectionImages(images, found.truth, found.dataset, found.warnings)


def detect_all(pipeline, images: DetectionImages, batch_size: int) -> list[ImageBoxes]:
    """The pipeline's detections on every image, in batches of the run's size (the last one
    filled up with the first images again, their detections dropped)."""
    import torch

    out: list[ImageBoxes] = []
    with torch.no_grad():  # not inference_mode: some quantized modules fail under it
        for start in range(0, len(images.images), batch_size):
            real = images.images[start:start + batch_size]
            filled = real + [images.images[i % len(images.images)]
                             for i in range(batch_size - len(real))]
            for found in pipeline(filled)[:len(real)]:
                out.append(ImageBoxes(
                    tuple(tuple(b) for b in found.boxes.float().cpu().tolist()),
                    tuple(int(v) for v in found.labels.cpu().tolist()),
                    tuple(float(v) for v in found.scores.float().cpu().tolist())))
    return out


def prepare_detection_reference(loaded, spec, images: DetectionImages, pipeline,
                                cache_dir: str | Path | None) -> DetectionReference:
    """The uncompressed pipeline's detections, from the session's cache when it has them."""
    from energy_console.core.quality.reference import model_identity, module_device

    start = time.perf_counter()
    identity = model_identity(loaded, spec, str(module_device(loaded.module)), CACHE_FORMAT)
    digest = hashlib.sha256(json.dumps(
        {**identity, "resolution": spec.resolution, "batch_size": spec.batch_size},
        sort_keys=True).encode())
    for image in images.images:
        digest.update(f"{tuple(image.shape)}".encode())
        digest.update(image.contiguous().numpy().tobytes())
    key = digest.hexdigest()
    path = Path(cache_dir) / f"detection-reference-{key[:20]}.json" if cache_dir else None
    warnings: list[str] = []
    cached = _load_cached(path, key, warnings)
    if cached is not None:
        return DetectionReference(cached, key, True, time.perf_counter() - start, warnings)
    detections = detect_all(pipeline, images, spec.batch_size)
    if path is not None:
        _save_atomic(path, {"format": CACHE_FORMAT, "key": key,
                            "detections": [_image_json(d) for d in detections]})
    return DetectionReference(detections, key, False, time.perf_counter() - start, warnings)


def evaluate_detection(pipeline, images: DetectionImages, reference: DetectionReference,
                       batch_size: int) -> QualityResult:
    """mAP against the dataset's boxes (when labelled), fidelity-mAP against the reference,
    and detections per image, for the (compressed) pipeline. Outside every energy window."""
    start = time.perf_counter()
    detections = detect_all(pipeline, images, batch_size)
    warnings = list(images.warnings) + list(reference.warnings)
    fidelity = fidelity_map(reference.detections, detections)
    if fidelity is None:
        warnings.append("fidelity-mAP not computed: the uncompressed model detected nothing "
                        "above the score threshold on these images")
    result = QualityResult(
        task="object-detection", metric="fidelity_map", value=fidelity,
        samples=len(detections), seconds=0.0, dataset=images.dataset,
        fidelity_map=fidelity,
        detections_per_image=sum(len(d) for d in detections) / max(len(detections), 1),
    )
    if images.truth is not None:
        scores = mean_average_precision(images.truth, detections)
        if scores is None:
            warnings.append(f"mAP not computed: {images.dataset} has no boxes on the images "
                            "evaluated")
        else:
            result.metric, result.value = "map", scores.map
            result.map, result.map_50 = scores.map, scores.map_50
            result.map_small, result.map_medium = scores.map_small, scores.map_medium
            result.map_large = scores.map_large
    result.warnings = warnings
    result.seconds = time.perf_counter() - start
    return result


def _image_json(image: ImageBoxes) -> dict[str, list]:
    return {"boxes": [list(b) for b in image.boxes], "labels": list(image.labels),
            "scores": list(image.scores)}


def _load_cached(path: Path | None, key: str, warnings: list[str]) -> list[ImageBoxes] | None:
    if path is None or not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("format") != CACHE_FORMAT or data.get("key") != key:
            return None
        return [ImageBoxes(tuple(tuple(b) for b in d["boxes"]), tuple(d["labels"]),
                           tuple(d["scores"])) for d in data["detections"]]
    except (OSError, ValueError, KeyError, TypeError) as exc:  # a torn or foreign file
        warnings.append(f"detection reference cache {path.name} unreadable ({exc}); recomputed")
        return None


def _save_atomic(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data), encoding="utf-8")
    os.replace(tmp, path)

"""Object-detection datasets in COCO's JSON layout: an instances JSON and a folder of images.

    dataset: {path: data/shapes-detect/instances.json}           # images/ beside the JSON
    dataset: {path: coco/annotations/instances_val2017.json, images: coco/val2017,
              max_samples: 500}

Categories are matched to the model's labels by name (case-blind), or through `label_map:`
(category name → model label id or name), as for classifiers. Boxes stay in the pixels of the
original image; a run resizes the images to its resolution and scales its detections back.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from energy_console.core.quality.datasets import DatasetError, DatasetSpec, evenly_spaced
from energy_console.core.quality.detection import ImageBoxes


@dataclass
class DetectionSet:
    """Images with their ground-truth boxes, labels as the model's label ids."""

    paths: list[Path]
    truth: list[ImageBoxes]
    dataset: str
    warnings: list[str] = field(default_factory=list)


def check_detection_dataset(spec: DatasetSpec) -> None:
    """Raise DatasetError unless the JSON reads as COCO instances and its first image exists
    (what pre-flight and the setup screen check, without the model)."""
    data = _read_instances(spec.path)
    first = images_folder(spec) / str(data["images"][0].get("file_name", ""))
    if not first.is_file():
        raise DatasetError(f"image {first} listed in {spec.path} does not exist; point "
                           "`images:` of the dataset at the folder holding the JSON's images")


def load_detection_set(spec: DatasetSpec, id2label: dict[int, str]) -> DetectionSet:
    """The dataset's images (at most max_samples, evenly spaced) and their boxes, labelled with
    the model's label ids (`id2label` of its config)."""
    data = _read_instances(spec.path)
    folder = images_folder(spec)
    categories = {c["id"]: str(c.get("name", c["id"])) for c in data["categories"]}
    ids = category_label_ids(categories, id2label, spec)
    by_image: dict[Any, list[dict]] = {}
    for number, annotation in enumerate(data["annotations"]):
        _check_annotation(spec.path, number, annotation, categories)
        by_image.setdefault(annotation["image_id"], []).append(annotation)
    warnings: list[str] = []
    keep = evenly_spaced(len(data["images"]), spec.max_samples)
    if len(keep) < len(data["images"]):
        warnings.append(f"{spec.name}: evaluated {len(keep)} of {len(data['images'])} images "
                        f"(max_samples {spec.max_samples})")
    images = [data["images"][i] for i in keep]
    paths, truth = [], []
    for image in images:
        path = folder / str(image.get("file_name", ""))
        if not path.is_file():
            raise DatasetError(f"image {path} listed in {spec.path} does not exist; point "
                               "`images:` of the dataset at the folder holding the JSON's "
                               "file_name entries")
        annotations = by_image.get(image.get("id"), [])
        paths.append(path)
        truth.append(ImageBoxes(
            tuple(_xyxy(a["bbox"]) for a in annotations),
            tuple(ids[a["category_id"]] for a in annotations),
            (),
            tuple(float(a.get("area", a["bbox"][2] * a["bbox"][3])) for a in annotations),
            tuple(bool(a.get("iscrowd", 0)) for a in annotations),
        ))
    return DetectionSet(paths, truth, str(spec.path), warnings)


def category_label_ids(categories: dict[Any, str], id2label: dict[int, str],
                       spec: DatasetSpec) -> dict[Any, int]:
    """Category id -> the model's label id: by `label_map` (name -> label id or name), else by
    name, exactly or case-blind."""
    exact = {name: int(i) for i, name in id2label.items()}
    folded = {name.strip().lower(): int(i) for i, name in id2label.items()}
    out, unknown = {}, []
    for category, name in categories.items():
        target: Any = name
        if spec.label_map is not None:
            if name not in spec.label_map:
                unknown.append(name)
                continue
            target = spec.label_map[name]
        if isinstance(target, int) and target in id2label:
            out[category] = target
        elif str(target) in exact or str(target).strip().lower() in folded:
            out[category] = exact.get(str(target), folded.get(str(target).strip().lower(), -1))
        else:
            unknown.append(name)
    if unknown:
        shown = ", ".join(repr(n) for n in sorted(unknown)[:10])
        labels = ", ".join(repr(n) for n in list(id2label.values())[:10])
        raise DatasetError(f"{spec.path}: categories {shown} are not labels of the model (its "
                           f"labels: {labels}{', ...' if len(id2label) > 10 else ''}); map them "
                           "with `label_map:` in the dataset entry (category name -> label id "
                           "or name)")
    return out


def images_folder(spec: DatasetSpec) -> Path:
    if spec.images is not None:
        if not spec.images.is_dir():
            raise DatasetError(f"dataset.images {spec.images} is not a folder; point it at the "
                               "folder of the JSON's images (e.g. coco/val2017)")
        return spec.images
    beside = spec.path.parent / "images"
    return beside if beside.is_dir() else spec.path.parent


def _read_instances(path: Path) -> dict[str, Any]:
    how = ("object-detection needs a COCO instances JSON (images, annotations, categories), "
           "e.g. data/shapes-detect/instances.json or COCO's instances_val2017.json")
    if path.is_dir() or path.suffix.lower() != ".json":
        raise DatasetError(f"{path} is not a .json file: {how}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DatasetError(f"{path} is not JSON ({exc}): {how}") from None
    missing = [k for k in ("images", "annotations", "categories")
               if not isinstance(data, dict) or not isinstance(data.get(k), list)]
    if missing:
        raise DatasetError(f"{path} has no list {', '.join(missing)}: {how}")
    if not data["images"]:
        raise DatasetError(f"{path} lists no images; add some to `images`")
    return data


def _check_annotation(path: Path, number: int, annotation: Any, categories: dict) -> None:
    bbox = annotation.get("bbox") if isinstance(annotation, dict) else None
    if not (isinstance(bbox, list) and len(bbox) == 4
            and all(isinstance(v, (int, float)) for v in bbox) and bbox[2] >= 0 <= bbox[3]):
        raise DatasetError(f"{path}: annotation {number} has no bbox [x, y, width, height] "
                           "with width and height >= 0; fix or remove it")
    if annotation.get("category_id") not in categories:
        raise DatasetError(f"{path}: annotation {number} names category "
                           f"{annotation.get('category_id')!r}, which `categories` lacks")


def _xyxy(bbox: list[float]) -> tuple[float, float, float, float]:
    x, y, width, height = (float(v) for v in bbox)
    return (x, y, x + width, y + height)

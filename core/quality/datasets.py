"""Evaluation datasets named in a profile: read, checked against the model, bounded.

A model entry's `dataset:` holds `path` (relative to the profile's folder), optionally
`max_samples`, `label_map` (a JSON file or an inline mapping from the dataset's label names to
the model's label ids or names) and `images` (object detection). Supported shapes:

- text classification: CSV with a header and `text`, `label` columns (labels as names or ids);
- image classification: a folder with one sub-folder per class, or a CSV with `path`, `label`;
- causal LM: a plain text file (or a CSV with a `text` column, rows joined by blank lines);
- object detection: a COCO instances JSON, its images in `images:` (default: the folder
  `images/` beside the JSON, else the JSON's own folder); read by core.coco.

Everything wrong with a dataset raises DatasetError, whose message names the problem and the fix.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_MAX_SAMPLES = 512
DATASET_KEYS = ("path", "max_samples", "label_map", "images")
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm",
                    ".pgm", ".pnm")


class DatasetError(ValueError):
    """A dataset that cannot be evaluated; str() names the problem and the fix."""


@dataclass(frozen=True)
class DatasetSpec:
    path: Path
    max_samples: int = DEFAULT_MAX_SAMPLES
    label_map: dict[str, Any] | None = None
    images: Path | None = None  # object detection: the images folder of a COCO JSON

    @property
    def name(self) -> str:
        return self.path.name


@dataclass
class LabelledTexts:
    texts: list[str]
    label_ids: list[int]
    warnings: list[str] = field(default_factory=list)


@dataclass
class LabelledImages:
    paths: list[Path]
    label_ids: list[int]
    warnings: list[str] = field(default_factory=list)


def dataset_spec(raw: dict[str, Any] | str, base_dir: str | Path = ".") -> DatasetSpec:
    """Check a model entry's `dataset:` value; paths are read relative to `base_dir`."""
    if isinstance(raw, str):
        raw = {"path": raw}
    unknown = sorted(set(raw) - set(DATASET_KEYS))
    if unknown:
        raise DatasetError(f"dataset: unknown key(s) {', '.join(unknown)}; allowed: "
                           + ", ".join(DATASET_KEYS))
    base = Path(base_dir)
    path = _resolve(raw.get("path"), base, "dataset.path")
    if not path.exists():
        raise DatasetError(f"dataset path {path} does not exist; fix `dataset: path:` in the "
                           "profile (relative paths are read from the profile's folder)")
    max_samples = raw.get("max_samples", DEFAULT_MAX_SAMPLES)
    if isinstance(max_samples, bool) or not isinstance(max_samples, int) or max_samples < 1:
        raise DatasetError(f"dataset.max_samples: {max_samples!r} is not allowed; expected a "
                           "whole number of samples, 1 or more")
    images = None if raw.get("images") is None else _resolve(raw["images"], base, "dataset.images")
    return DatasetSpec(path, max_samples, _label_map(raw.get("label_map"), base), images)


def _resolve(value: Any, base: Path, key: str) -> Path:
    if not isinstance(value, str) or not value.strip():
        raise DatasetError(f"{key}: {value!r} is not allowed; expected a file or folder path")
    return (base / Path(value).expanduser()).resolve()


def _label_map(value: Any, base: Path) -> dict[str, Any] | None:
    if value is None:
        return None
    if isinstance(value, str):
        path = _resolve(value, base, "dataset.label_map")
        try:
            value = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise DatasetError(f"label map {path} does not exist; fix `label_map:` in the "
                               "dataset entry") from None
        except json.JSONDecodeError as exc:
            raise DatasetError(f"label map {path} is not valid JSON ({exc}); it must map "
                               'dataset labels to model label ids or names, e.g. {"cat": 0}') \
                from None
    if not isinstance(value, dict) or not all(isinstance(v, (int, str)) for v in value.values()):
        raise DatasetError("dataset.label_map must map dataset labels to model label ids or "
                           'names, e.g. {"cat": 0, "dog": "LABEL_1"}')
    return {str(k): v for k, v in value.items()}


# ------------------------------------------------------------------------------------ selection


def evenly_spaced(count: int, limit: int) -> list[int]:
    """Indices of at most `limit` of `count` items, spread over all of them.

    Spread, not the first ones, because datasets are often sorted by label.
    """
    if count <= limit:
        return list(range(count))
    return [i * count // limit for i in range(limit)]


def _bounded(items: list, spec: DatasetSpec, what: str, warnings: list[str]) -> list[int]:
    keep = evenly_spaced(len(items), spec.max_samples)
    if len(keep) < len(items):
        warnings.append(f"{spec.name}: evaluated {len(keep)} of {len(items)} {what} "
                        f"(max_samples {spec.max_samples})")
    return keep


# ------------------------------------------------------------------------------------- labels


def resolve_labels(raw: list[str], label_names: list[str] | None, num_labels: int,
                   label_map: dict[str, Any] | None, source: str) -> list[int]:
    """Dataset labels as the model's label ids.

    Each label (after label_map, when given) is a model label name (matched exactly, else
    case-blind) or a label id.
    """
    labels: list[str | int] = list(raw)
    if label_map is not None:
        missing = sorted(set(raw) - set(label_map))
        if missing:
            raise DatasetError(f"{source}: labels {_few(missing)} are not in the label map; add "
                               "them to `label_map:`")
        labels = [label_map[r] for r in raw]
    names = label_names or []
    exact = {name: i for i, name in enumerate(names)}
    folded = {name.strip().lower(): i for i, name in enumerate(names)}
    ids: list[int | None] = [_label_id(label, exact, folded) for label in labels]
    unknown = sorted({str(label) for label, i in zip(labels, ids, strict=True) if i is None})
    if unknown and not names:
        raise DatasetError(f"{source}: labels {_few(unknown)} are names but the model has no "
                           "label names (id2label in its config); give label ids instead")
    if unknown:
        raise DatasetError(
            f"{source}: labels {_few(unknown)} are not labels of the model, whose id2label is "
            f"{_few(names)}; rename them in the dataset, use ids 0..{num_labels - 1}, or map "
            "them with `label_map:` in the dataset entry"
        )
    known = [i for i in ids if i is not None]  # all of them: unknown labels raised above
    bad = sorted({i for i in known if not 0 <= i < num_labels})
    if bad:
        raise DatasetError(f"{source}: label ids {_few(bad)} are out of range; the model has "
                           f"{num_labels} labels (ids 0..{num_labels - 1})")
    return known


def _label_id(label: str | int, exact: dict[str, int], folded: dict[str, int]) -> int | None:
    if isinstance(label, int):
        return label
    if label in exact:
        return exact[label]
    if label.strip().lstrip("-").isdigit():
        return int(label)
    return folded.get(label.strip().lower())


def _few(items: list, limit: int = 10) -> str:
    shown = ", ".join(repr(i) for i in items[:limit])
    return f"[{shown}{', ...' if len(items) > limit else ''}]"


# ---------------------------------------------------------------------------------------- CSV


def read_csv(path: Path, needed: tuple[str, ...], task: str) -> list[dict[str, str]]:
    """Rows of a CSV with a header holding the `needed` columns (names matched case-blind)."""
    if path.is_dir():
        raise DatasetError(f"{path} is a folder; {task} needs a CSV file with columns "
                           + ", ".join(needed))
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            header = [h.strip().lower() for h in reader.fieldnames or []]
            missing = [c for c in needed if c not in header]
            if missing:
                raise DatasetError(
                    f"{path} has columns {header or 'none'} but {task} needs "
                    f"{', '.join(needed)}; add a header row naming them (missing: "
                    f"{', '.join(missing)})"
                )
            rows = []
            for number, row in enumerate(reader, start=2):
                row = {(k or "").strip().lower(): v for k, v in row.items()}
                if any(row.get(c) is None for c in needed):
                    raise DatasetError(f"{path}, line {number}: fewer fields than the header; "
                                       "quote fields that hold commas")
                rows.append(row)
    except UnicodeDecodeError as exc:
        raise DatasetError(f"{path} is not UTF-8 text ({exc.reason}); save it as UTF-8 CSV") \
            from None
    if not rows:
        raise DatasetError(f"{path} has a header but no rows; add samples")
    return rows


def load_labelled_texts(spec: DatasetSpec, label_names: list[str] | None,
                        num_labels: int) -> LabelledTexts:
    if spec.path.suffix.lower() != ".csv":
        raise DatasetError(f"{spec.path}: text-classification needs a CSV file with text,label "
                           "columns")
    rows = read_csv(spec.path, ("text", "label"), "text-classification")
    warnings: list[str] = []
    rows = [rows[i] for i in _bounded(rows, spec, "rows", warnings)]
    labels = resolve_labels([r["label"].strip() for r in rows], label_names, num_labels,
                            spec.label_map, str(spec.path))
    return LabelledTexts([r["text"] for r in rows], labels, warnings)


def load_text_corpus(spec: DatasetSpec) -> str:
    """The text a causal LM is scored on: a plain text file, or a CSV's `text` column."""
    if spec.path.is_dir():
        raise DatasetError(f"{spec.path} is a folder; causal-lm needs a plain text file")
    if spec.path.suffix.lower() == ".csv":
        return "\n\n".join(r["text"] for r in read_csv(spec.path, ("text",), "causal-lm"))
    try:
        text = spec.path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise DatasetError(f"{spec.path} is not UTF-8 text ({exc.reason}); causal-lm needs a "
                           "plain UTF-8 text file") from None
    if not text.strip():
        raise DatasetError(f"{spec.path} is empty; causal-lm needs text to score")
    return text


def load_prompts(spec: DatasetSpec) -> list[str]:
    """The prompts of a generate run: JSONL objects with a `prompt` string (`.jsonl`), or one
    prompt a line of a text file (blank lines skipped). At most max_samples, evenly spaced."""
    prompts = [item["prompt"] for _, item in _prompt_items(spec)]
    return [prompts[i] for i in evenly_spaced(len(prompts), spec.max_samples)]


CODE_TASK_FIELDS = ("prompt", "entry_point", "test")


def load_code_tasks(spec: DatasetSpec) -> list:
    """The HumanEval-style tasks of a prompt file (`prompt`, `entry_point`, `test` per JSONL
    line), the same ones in the same order as load_prompts keeps: list[CodeTask]."""
    from energy_console.core.quality.code_exec import CodeTask

    how = ("pass@1 needs a .jsonl file whose every line has `prompt`, `entry_point` (the "
           "function's name) and `test` (source defining check(candidate)), like "
           "data/code-tasks.jsonl or HumanEval; point `dataset:` at one, or remove "
           "`pass_at_1: true` from `generation:`")
    if spec.path.suffix.lower() != ".jsonl":
        raise DatasetError(f"{spec.path} is not a .jsonl file: {how}")
    items = _prompt_items(spec)
    lacking = [(number, [k for k in CODE_TASK_FIELDS if not isinstance(item.get(k), str)
                         or not item[k].strip()]) for number, item in items]
    lacking = [(number, keys) for number, keys in lacking if keys]
    if lacking:
        where = ", ".join(str(number) for number, _ in lacking[:5])
        more = f" and {len(lacking) - 5} more" if len(lacking) > 5 else ""
        missing = sorted({k for _, keys in lacking for k in keys})
        raise DatasetError(f"{spec.path}: line(s) {where}{more} lack {', '.join(missing)}; {how}")
    tasks = [CodeTask(item["prompt"], item["entry_point"].strip(), item["test"],
                      str(item.get("task_id", number))) for number, item in items]
    return [tasks[i] for i in evenly_spaced(len(tasks), spec.max_samples)]


def _prompt_items(spec: DatasetSpec) -> list[tuple[int, dict[str, Any]]]:
    """(line number, object) per prompt; a text file's lines become {"prompt": line}."""
    if spec.path.is_dir():
        raise DatasetError(f"{spec.path} is a folder; generate runs need a prompt file (JSONL "
                           'lines {"prompt": "..."} or one prompt a line)')
    try:
        lines = spec.path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as exc:
        raise DatasetError(f"{spec.path} is not UTF-8 text ({exc.reason}); save the prompts "
                           "as UTF-8") from None
    items: list[tuple[int, dict[str, Any]]] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        if spec.path.suffix.lower() != ".jsonl":
            items.append((number, {"prompt": line.rstrip("\n")}))
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DatasetError(f"{spec.path}, line {number}: not JSON ({exc.msg}); each line of "
                               'a .jsonl prompt file is an object like {"prompt": "..."}') from None
        if not isinstance(item, dict) or not isinstance(item.get("prompt"), str):
            raise DatasetError(f"{spec.path}, line {number}: no `prompt` string; each line of a "
                               '.jsonl prompt file is an object like {"prompt": "..."}')
        items.append((number, item))
    if not items:
        raise DatasetError(f"{spec.path} holds no prompts; add JSONL lines "
                           '{"prompt": "..."} or one prompt a line')
    return items


# ------------------------------------------------------------------------------------- images


def load_labelled_images(spec: DatasetSpec, label_names: list[str] | None,
                         num_labels: int) -> LabelledImages:
    if spec.path.is_dir():
        pairs = image_folder(spec.path)
    elif spec.path.suffix.lower() == ".csv":
        rows = read_csv(spec.path, ("path", "label"), "image-classification")
        pairs = [(spec.path.parent / r["path"].strip(), r["label"].strip()) for r in rows]
    else:
        raise DatasetError(f"{spec.path}: image-classification needs a folder with one "
                           "sub-folder per class, or a CSV with path,label columns")
    warnings: list[str] = []
    pairs = [pairs[i] for i in _bounded(pairs, spec, "images", warnings)]
    for path, _ in pairs:
        if not path.is_file():
            raise DatasetError(f"image {path} listed in {spec.path} does not exist; fix the path "
                               "(relative to the CSV's folder) or remove the row")
    labels = resolve_labels([label for _, label in pairs], label_names, num_labels,
                            spec.label_map, str(spec.path))
    return LabelledImages([p for p, _ in pairs], labels, warnings)


def image_folder(folder: Path) -> list[tuple[Path, str]]:
    """(image, class) of every image in <folder>/<class>/; dot-folders (.ipynb_checkpoints)
    are not classes."""
    classes = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    pairs = [
        (f, c.name)
        for c in classes
        for f in sorted(c.iterdir())
        if f.is_file() and f.suffix.lower() in IMAGE_EXTENSIONS
    ]
    if not pairs:
        raise DatasetError(f"{folder} holds no images in class sub-folders; image-classification "
                           "needs <folder>/<class>/<image> (extensions: "
                           + " ".join(IMAGE_EXTENSIONS) + ")")
    return pairs


def read_image(path: Path):
    """An image as a float tensor (channels, height, width) in [0, 1], decoded by Pillow."""
    import torch
    from PIL import Image

    try:
        with Image.open(path) as opened:
            image = opened.convert("RGB")
    except Exception as exc:  # decoders raise many types for a broken file
        raise DatasetError(f"cannot read image {path}: {exc}; replace or remove the file") \
            from None
    data = torch.frombuffer(bytearray(image.tobytes()), dtype=torch.uint8)
    return data.view(image.height, image.width, 3).permute(2, 0, 1).float() / 255.0

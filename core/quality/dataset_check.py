"""The dataset check that pre-flight and the setup screen share: whether a model's `dataset:`
can be read for its task, without loading the model.

It asks the readers themselves (core.quality.datasets, core.quality.coco), so what it accepts is
what a run reads: class folders without dot-folders, every image a CSV names. Labels are checked
when the run starts: that needs the model's label names. No torch here: the console imports it.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from energy_console.core.quality.coco import check_detection_dataset
from energy_console.core.quality.datasets import (
    DatasetError,
    dataset_spec,
    image_folder,
    load_code_tasks,
    load_text_corpus,
    read_csv,
)
from energy_console.core.spec.workloads import GenerationSettings, Workload

DATASET_FORMATS = {  # what the readers take, per task
    "text-classification": "a CSV with text,label columns",
    "image-classification": "a folder of class sub-folders of images, or a CSV with path,label "
                            "columns",
    "causal-lm": "a plain text file, or a CSV with a text column",
    "object-detection": "a COCO instances JSON (its images in images/ beside it)",
}


def dataset_shape_problem(raw: dict[str, Any] | str, base_dir: str | Path, task: str | None,
                          code_tasks: bool = False) -> str | None:
    """Why the dataset `raw` (a model entry's `dataset:` value, paths relative to `base_dir`)
    cannot be read for `task`, or None. `code_tasks`: a generate run scored by pass@1, whose
    prompt file also needs HumanEval's fields. An unknown task checks the path only."""
    try:
        spec = dataset_spec(raw, base_dir)
        path = spec.path
        if task == "text-classification":
            if path.suffix.lower() != ".csv":
                raise DatasetError(f"{path}: {task} needs {DATASET_FORMATS[task]}")
            read_csv(path, ("text", "label"), task)
        elif task == "image-classification":
            if path.is_dir():
                image_folder(path)
            elif path.suffix.lower() == ".csv":
                for row in read_csv(path, ("path", "label"), task):
                    image = path.parent / row["path"].strip()
                    if not image.is_file():
                        raise DatasetError(f"image {image} listed in {path} does not exist; fix "
                                           "the path (relative to the CSV's folder) or remove "
                                           "the row")
            else:
                raise DatasetError(f"{path}: {task} needs {DATASET_FORMATS[task]}")
        elif task == "causal-lm":
            load_text_corpus(spec)
            if code_tasks:
                load_code_tasks(spec)
        elif task == "object-detection":
            check_detection_dataset(spec)
    except DatasetError as exc:
        return str(exc)
    except OSError as exc:
        where = exc.filename or (raw if isinstance(raw, str) else raw.get("path"))
        return f"cannot read {where}: {exc.strerror or exc}; check the path and its permissions"
    return None


def scored_by_pass_at_1(workload: str | None,
                        generation: GenerationSettings | Mapping[str, Any] | None) -> bool:
    """A generate run whose completions are run against tests: its prompt file needs HumanEval's
    fields (the `code_tasks` of dataset_shape_problem). `generation` as checked (pre-flight) or
    as typed in the console (a mapping)."""
    if workload != Workload.GENERATE or generation is None:
        return False
    if isinstance(generation, Mapping):
        return generation.get("pass_at_1") is True
    return generation.pass_at_1

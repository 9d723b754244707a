"""One dataset check for pre-flight and the setup screen: both give the same answer, the one the
readers give when a run starts."""

from __future__ import annotations

from pathlib import Path

from energy_console.core.session.preflight import check
from energy_console.core.session.profile_check import parse_profile
from energy_console.tui.selection import dataset_problem

RESNET = "demo/tiny-resnet-random"  # an image-classification demo model
PPM = b"P6\n1 1\n255\n\x00\x00\x00"  # a one-pixel image


def _preflight_answer(dataset: Path) -> str | None:
    profile = parse_profile(f"name: p\ndevice: cpu\nmodels:\n  - demo: {RESNET}\n"
                            f"    dataset: {dataset}\ntechniques: [baseline]\n")
    problems = [p.message for p in check(profile) if p.subject == "models[0].dataset"]
    return problems[0] if problems else None


def _setup_answer(dataset: Path) -> str | None:
    return dataset_problem(str(dataset), "image-classification", {"demo": RESNET})


def test_a_dot_folder_is_no_class_to_either(tmp_path):
    folder = tmp_path / "images"
    (folder / ".ipynb_checkpoints").mkdir(parents=True)
    (folder / ".ipynb_checkpoints" / "cat.ppm").write_bytes(PPM)
    answer = _preflight_answer(folder)
    assert answer is not None and "holds no images in class sub-folders" in answer
    assert _setup_answer(folder) == answer
    (folder / "cats").mkdir()
    (folder / "cats" / "cat.ppm").write_bytes(PPM)
    assert _preflight_answer(folder) is None and _setup_answer(folder) is None


def test_a_csv_naming_a_missing_image_is_refused_by_both(tmp_path):
    (tmp_path / "cat.ppm").write_bytes(PPM)
    listing = tmp_path / "images.csv"
    listing.write_text("path,label\ncat.ppm,0\nmissing.ppm,0\n", encoding="utf-8")
    answer = _preflight_answer(listing)
    assert answer is not None and "missing.ppm listed in" in answer and "does not exist" in answer
    assert _setup_answer(listing) == answer

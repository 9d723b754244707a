"""Datasets: reading, bounding, label checks, the demo tokenizer, and the messages bad data gets."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from energy_console.core.models import load_model
from energy_console.core.models.demo_tokenizer import DemoTokenizer
from energy_console.core.quality.datasets import (
    DatasetError,
    dataset_spec,
    evenly_spaced,
    load_labelled_images,
    load_labelled_texts,
    read_image,
    resolve_labels,
)
from energy_console.core.quality.reference import prepare_reference
from energy_console.core.session.plan import expand
from energy_console.core.session.profile_check import parse_profile

DATA = Path(__file__).resolve().parent.parent / "data"
SENTIMENT_LABELS = ["negative", "positive"]


def write_csv(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def baseline_spec(model_yaml: str, base_dir: Path, size: int = 16):
    text = (f"name: dataset-test\nmodels:\n{model_yaml}\ntechniques: [baseline]\n"
            f"inputs: {{batch_sizes: [2], sequence_lengths: [{size}], resolutions: [{size}]}}\n")
    return expand(parse_profile(text, base_dir=str(base_dir)), device="cpu")[0]


def prepare(model_yaml: str, base_dir: Path, size: int = 16):
    spec = baseline_spec(model_yaml, base_dir, size)
    return prepare_reference(load_model(spec.model, "cpu"), spec, None)


# ----------------------------------------------------------------------------- shipped data


def test_shipped_sentiment_csv_reads_with_model_label_names():
    data = load_labelled_texts(dataset_spec("sentiment-mini.csv", DATA), SENTIMENT_LABELS, 2)
    assert len(data.texts) == 160
    assert sorted(set(data.label_ids)) == [0, 1]
    assert data.warnings == []


def test_shipped_images_read_through_their_label_map():
    spec = dataset_spec({"path": "images-mini", "label_map": "images-mini/label_map.json"}, DATA)
    data = load_labelled_images(spec, [f"LABEL_{i}" for i in range(10)], 10)
    label_map = json.loads((DATA / "images-mini" / "label_map.json").read_text())
    assert len(data.paths) == 30
    assert [label_map[p.parent.name] for p in data.paths] == data.label_ids


def test_ppm_images_decode_without_pillow_to_unit_range():
    image = read_image(sorted((DATA / "images-mini" / "square").glob("*.ppm"))[0])
    assert image.shape == (3, 32, 32)
    assert 0.0 <= float(image.min()) < float(image.max()) <= 1.0
    # the square is light on a dark background: the centre is brighter than the corner
    assert float(image[:, 16, 16].mean()) > float(image[:, 0, 0].mean()) + 0.3


def test_image_generator_is_deterministic(tmp_path):
    import importlib.util as util

    module_spec = util.spec_from_file_location("make_images", DATA / "make_images.py")
    make_images = util.module_from_spec(module_spec)
    module_spec.loader.exec_module(make_images)
    make_images.main(tmp_path)
    shipped = DATA / "images-mini" / "ring" / "ring-1.ppm"
    assert (tmp_path / "ring" / "ring-1.ppm").read_bytes() == shipped.read_bytes()


# --------------------------------------------------------------------------------- bounding


def test_max_samples_spreads_over_a_sorted_dataset_and_warns(tmp_path):
    rows = "".join(f"text {i},{'negative' if i < 50 else 'positive'}\n" for i in range(100))
    write_csv(tmp_path / "sorted.csv", "text,label\n" + rows)
    spec = dataset_spec({"path": "sorted.csv", "max_samples": 10}, tmp_path)
    data = load_labelled_texts(spec, SENTIMENT_LABELS, 2)
    assert len(data.texts) == 10
    assert data.label_ids.count(0) == data.label_ids.count(1) == 5
    assert "evaluated 10 of 100 rows" in data.warnings[0]


def test_evenly_spaced_keeps_everything_under_the_limit():
    assert evenly_spaced(3, 10) == [0, 1, 2]
    assert evenly_spaced(10, 5) == [0, 2, 4, 6, 8]


# ----------------------------------------------------------------------------------- labels


def test_labels_may_be_ids_names_in_any_case_or_mapped():
    assert resolve_labels(["1", "0"], SENTIMENT_LABELS, 2, None, "d") == [1, 0]
    assert resolve_labels(["Positive", "NEGATIVE"], SENTIMENT_LABELS, 2, None, "d") == [1, 0]
    assert resolve_labels(["good", "bad"], SENTIMENT_LABELS, 2,
                          {"good": "positive", "bad": 0}, "d") == [1, 0]


def test_label_names_the_model_lacks_are_named_with_the_models_labels():
    with pytest.raises(DatasetError) as error:
        resolve_labels(["positive", "neutral"], SENTIMENT_LABELS, 2, None, "reviews.csv")
    message = str(error.value)
    assert "reviews.csv" in message and "'neutral'" in message
    assert "['negative', 'positive']" in message and "label_map" in message


def test_label_ids_out_of_range_say_the_models_range():
    with pytest.raises(DatasetError, match=r"label ids \[2, 7\] are out of range.*ids 0\.\.1"):
        resolve_labels(["0", "2", "7"], SENTIMENT_LABELS, 2, None, "d")


def test_label_map_missing_a_label_names_it():
    with pytest.raises(DatasetError, match=r"labels \['meh'\] are not in the label map"):
        resolve_labels(["good", "meh"], SENTIMENT_LABELS, 2, {"good": 1}, "d")


@pytest.mark.session  # slow tier
def test_label_mismatch_fails_the_reference_before_any_compression(tmp_path):
    write_csv(tmp_path / "three.csv", "text,label\nfine,positive\nso so,neutral\n")
    with pytest.raises(DatasetError, match="'neutral'"):
        prepare("  - demo: demo/tiny-bert-random\n    dataset: three.csv", tmp_path)


# --------------------------------------------------------------------------- bad datasets


@pytest.mark.session  # slow tier: a real worker
def test_missing_dataset_path_names_the_path_and_the_fix(tmp_path):
    with pytest.raises(DatasetError) as error:
        prepare("  - demo: demo/tiny-bert-random\n    dataset: nowhere.csv", tmp_path)
    assert str(tmp_path / "nowhere.csv") in str(error.value)
    assert "does not exist" in str(error.value) and "profile's folder" in str(error.value)


def test_csv_without_label_column_says_which_columns_are_needed(tmp_path):
    write_csv(tmp_path / "nolabel.csv", "sentence,score\nhello,1\n")
    with pytest.raises(DatasetError) as error:
        prepare("  - demo: demo/tiny-bert-random\n    dataset: nolabel.csv", tmp_path)
    message = str(error.value)
    assert "['sentence', 'score']" in message and "missing: text, label" in message


def test_csv_row_with_missing_fields_names_the_line(tmp_path):
    write_csv(tmp_path / "short.csv", "text,label\nfine,positive\nno label here\n")
    with pytest.raises(DatasetError, match="line 3: fewer fields"):
        load_labelled_texts(dataset_spec("short.csv", tmp_path), SENTIMENT_LABELS, 2)


def test_text_classification_needs_a_csv_not_a_text_file():
    with pytest.raises(DatasetError, match="needs a CSV file with text,label"):
        load_labelled_texts(dataset_spec("text-mini.txt", DATA), SENTIMENT_LABELS, 2)


def test_unreadable_image_names_the_file(tmp_path):
    (tmp_path / "cats").mkdir()
    (tmp_path / "cats" / "broken.ppm").write_bytes(b"P6\n32 32\n255\nnot enough bytes")
    spec = baseline_spec("  - demo: demo/tiny-resnet-random\n    dataset: {path: .,"
                         " label_map: {cats: 0}}", tmp_path)
    with pytest.raises(DatasetError, match=r"cannot read image .*broken\.ppm.*replace or remove"):
        prepare_reference(load_model(spec.model, "cpu"), spec, None)


def test_image_folder_without_class_folders_says_the_layout(tmp_path):
    (tmp_path / "loose.ppm").write_bytes(b"")
    with pytest.raises(DatasetError, match=r"needs <folder>/<class>/<image>"):
        load_labelled_images(dataset_spec(".", tmp_path), None, 10)


def test_image_csv_row_pointing_nowhere_names_the_image(tmp_path):
    write_csv(tmp_path / "images.csv", "path,label\nmissing.ppm,0\n")
    with pytest.raises(DatasetError, match=r"missing\.ppm listed in .*images\.csv does not exist"):
        load_labelled_images(dataset_spec("images.csv", tmp_path), None, 10)


def test_text_too_short_for_one_window_says_what_to_change(tmp_path):
    (tmp_path / "tiny.txt").write_text("only five words are here")
    with pytest.raises(DatasetError, match="5 tokens, fewer than one window of 16"):
        prepare("  - demo: demo/tiny-gpt2-random\n    dataset: tiny.txt", tmp_path)


def test_model_without_tokenizer_cannot_read_a_text_dataset(tmp_path):
    from transformers import BertConfig, BertForSequenceClassification

    BertForSequenceClassification(BertConfig(
        vocab_size=64, hidden_size=16, num_hidden_layers=1, num_attention_heads=1,
        intermediate_size=16, num_labels=2,
    )).save_pretrained(tmp_path / "model")
    write_csv(tmp_path / "eval.csv", "text,label\nfine,1\n")
    model_yaml = f"  - path: {tmp_path / 'model'}\n    dataset: eval.csv"
    with pytest.raises(DatasetError, match=r"has no tokenizer.*tokenizer\.save_pretrained"):
        prepare(model_yaml, tmp_path)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({"path": "text-mini.txt", "samples": 3}, r"unknown key\(s\) samples; allowed: path"),
        ({"path": "text-mini.txt", "max_samples": 0}, "max_samples: 0 is not allowed"),
        ({"path": "images-mini", "label_map": "nope.json"}, "label map .*nope.json does not"),
        ({"path": "images-mini", "label_map": ["cat"]}, "must map dataset labels"),
    ],
)
def test_bad_dataset_entries_name_the_key(raw, expected):
    with pytest.raises(DatasetError, match=expected):
        dataset_spec(raw, DATA)


# --------------------------------------------------------------------------- demo tokenizer


def test_demo_tokenizer_is_deterministic_and_inside_the_vocabulary():
    tokenizer = DemoTokenizer(1024)
    ids = tokenizer.encode("The kettle broke, sadly!")
    assert ids == DemoTokenizer(1024).encode("the KETTLE broke , sadly !")
    assert ids[0] == 2 and ids[-1] == 3 and len(ids) == 2 + 6
    assert all(0 <= i < 1024 for i in ids)


def test_demo_tokenizer_pads_and_truncates_like_a_transformers_tokenizer():
    batch = DemoTokenizer(1024)(["one two three four five", "one"], max_length=4,
                                padding="max_length", truncation=True, return_tensors="pt")
    assert batch["input_ids"].shape == (2, 4)
    assert batch["input_ids"][0, -1] == 3  # truncated rows keep their [SEP]
    assert batch["attention_mask"].tolist() == [[1, 1, 1, 1], [1, 1, 1, 0]]


def test_demo_tokenizer_saved_beside_a_model_is_found_again(tmp_path):
    DemoTokenizer(512).save_pretrained(tmp_path)
    assert DemoTokenizer.from_folder(tmp_path) == DemoTokenizer(512)
    assert DemoTokenizer.from_folder(tmp_path / "elsewhere") is None

"""A small text classifier trained in seconds, for tests that need real quality figures."""

from __future__ import annotations

import csv
import fcntl
import os
import random
import tempfile
from pathlib import Path

from energy_console.core.models.demo_tokenizer import DemoTokenizer

POSITIVE_WORDS = ["good", "great", "excellent", "lovely", "superb", "wonderful"]
NEGATIVE_WORDS = ["bad", "awful", "terrible", "poor", "broken", "dreadful"]
FILLER_WORDS = ("the it was and a this very my of we day box shop item time really quite so "
                "found thought seemed today again after before with").split()
SEQ_LEN = 16


def keyword_sentences(count: int, seed: int) -> list[tuple[str, str]]:
    """Sentences whose label is set by the one sentiment keyword they hold."""
    rng = random.Random(seed)
    rows = []
    for i in range(count):
        label = "positive" if i % 2 else "negative"
        words = rng.sample(FILLER_WORDS, 6)
        keywords = POSITIVE_WORDS if label == "positive" else NEGATIVE_WORDS
        words.insert(rng.randrange(len(words) + 1), rng.choice(keywords))
        rows.append((" ".join(words), label))
    return rows


def train_keyword_classifier(folder: Path) -> Path:
    """A tiny BERT trained on keyword sentences, saved with its tokenizer in folder/model, and
    an evaluation CSV in folder/eval.csv."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(0)
    model = BertForSequenceClassification(BertConfig(
        vocab_size=1024, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=64, max_position_embeddings=64, num_labels=2,
        hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
        id2label={0: "negative", 1: "positive"}, label2id={"negative": 0, "positive": 1},
    ))
    tokenizer = DemoTokenizer(1024)
    train = keyword_sentences(256, seed=1)
    inputs = tokenizer([t for t, _ in train], max_length=SEQ_LEN, padding="max_length",
                       truncation=True, return_tensors="pt")
    labels = torch.tensor([int(label == "positive") for _, label in train])
    optimiser = torch.optim.AdamW(model.parameters(), lr=3e-3)
    model.train()
    for _epoch in range(3):
        for start in range(0, len(train), 32):
            rows = slice(start, start + 32)
            loss = model(input_ids=inputs["input_ids"][rows],
                         attention_mask=inputs["attention_mask"][rows], labels=labels[rows]).loss
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
    model.save_pretrained(folder / "model")
    tokenizer.save_pretrained(folder / "model")
    with (folder / "eval.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "label"])
        writer.writerows(keyword_sentences(96, seed=2))
    return folder


def shared_keyword_classifier(tmp_path_factory) -> Path:
    """train_keyword_classifier's folder, trained once per test run for every test file that
    asks (under pytest-xdist the first process trains it, the others wait on a lock and read
    it): the tests only read it, so it needs training once, not once per module."""
    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent  # shared by this run's worker processes (pytest-xdist's recipe)
    folder = base / "keyword-classifier"
    with (base / "keyword-classifier.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not folder.exists():
            staging = Path(tempfile.mkdtemp(prefix="keyword-classifier-", dir=base))
            train_keyword_classifier(staging)
            staging.rename(folder)  # whole or absent: a reader never sees half a model
    return folder


def write_training_set(folder: Path) -> Path:
    """The keyword sentences the classifier learnt from, as a CSV to fine-tune on (apart from
    eval.csv, so accuracy after a fine-tune is measured on sentences it never trained on)."""
    path = folder / "train.csv"
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "label"])
        writer.writerows(keyword_sentences(256, seed=1))
    return path

"""A local model folder whose measured forward pass takes a fixed time: it sleeps whatever its
computation leaves of `pace_ms`. On a loaded test machine a real model's latency wanders with the
scheduler; this one's does not (a sleep needs no CPU), so a window's inferences, and its energy
per inference at a known power, are known.

It is a tiny BERT classifier saved with save_pretrained plus its own modeling code (run with
`trust_remote_code: true`). It keeps pace only while measured (under inference_mode, no flop
counter's dispatch mode active), never while the reference is computed or its flops counted.
"""

from __future__ import annotations

import json
from pathlib import Path

MODELING = '''\
import time

import torch
from torch.utils._python_dispatch import _get_current_dispatch_mode
from transformers import BertConfig, BertForSequenceClassification


class PacedConfig(BertConfig):
    model_type = "paced-bert"

    def __init__(self, pace_ms=0.0, **kwargs):
        super().__init__(**kwargs)
        self.pace_ms = pace_ms


class PacedBert(BertForSequenceClassification):
    config_class = PacedConfig

    def forward(self, input_ids=None, **kwargs):
        start = time.monotonic()
        out = super().forward(input_ids=input_ids, **kwargs)
        if torch.is_inference_mode_enabled() and _get_current_dispatch_mode() is None:
            time.sleep(max(0.0, start + self.config.pace_ms / 1000.0 - time.monotonic()))
        return out
'''


def save_paced_model(folder: Path, pace_ms: float) -> Path:
    """A tiny classifier folder whose measured forward pass lasts `pace_ms`."""
    from transformers import BertConfig, BertForSequenceClassification

    BertForSequenceClassification(BertConfig(
        vocab_size=256, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=32, max_position_embeddings=64,
    )).save_pretrained(folder)
    (folder / "modeling_paced.py").write_text(MODELING)
    config = json.loads((folder / "config.json").read_text())
    config.update(
        model_type="paced-bert", architectures=["PacedBert"], pace_ms=pace_ms,
        auto_map={"AutoConfig": "modeling_paced.PacedConfig",
                  "AutoModelForSequenceClassification": "modeling_paced.PacedBert"},
    )
    (folder / "config.json").write_text(json.dumps(config))
    return folder


PACED_NET = '''\
import time

import torch
from torch.utils._python_dispatch import _get_current_dispatch_mode


class PacedNet(torch.nn.Module):
    """Token ids to two logits; a measured call lasts pace_ms."""

    def __init__(self, pace_ms=0.0, vocab_size=256):
        super().__init__()
        self.pace_ms = pace_ms
        self.embed = torch.nn.Embedding(vocab_size, 16)
        self.head = torch.nn.Linear(16, 2)

    def forward(self, input_ids):
        start = time.monotonic()
        out = self.head(self.embed(input_ids).mean(1))
        if torch.is_inference_mode_enabled() and _get_current_dispatch_mode() is None:
            time.sleep(max(0.0, start + self.pace_ms / 1000.0 - time.monotonic()))
        return out
'''


def paced_factory_model(folder: Path, pace_ms: float) -> str:
    """The same pace as a plain torch classifier of token ids (`factory:`, its module written
    into the profile's `folder`), as the profile's `models:` holds it: a session of it has no
    transformers to import (its forkserver preloads torch alone)."""
    (folder / "pacednet.py").write_text(PACED_NET)
    return ("{factory: 'pacednet:PacedNet', task: text-classification, vocab_size: 256, "
            f"kwargs: {{pace_ms: {pace_ms}}}}}")

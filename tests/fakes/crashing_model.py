"""A local model folder whose forward pass kills its own process at one input size, the way the
kernel's OOM killer does (SIGKILL), so a session's real worker dies mid-size.

It is a tiny BERT classifier saved with save_pretrained plus its own modeling code (run with
`trust_remote_code: true`). The code dies only when measured (under inference_mode, no flop
counter's dispatch mode active), never while the uncompressed reference is computed (under
no_grad) or its flops counted: what fails is the measurement of that one size.
"""

from __future__ import annotations

import json
from pathlib import Path

MODELING = '''\
import os
import signal

import torch
from torch.utils._python_dispatch import _get_current_dispatch_mode
from transformers import BertConfig, BertForSequenceClassification


class CrashingConfig(BertConfig):
    model_type = "crashing-bert"

    def __init__(self, crash_at_seq_len=0, **kwargs):
        super().__init__(**kwargs)
        self.crash_at_seq_len = crash_at_seq_len


class CrashingBert(BertForSequenceClassification):
    config_class = CrashingConfig

    def forward(self, input_ids=None, **kwargs):
        measuring = torch.is_inference_mode_enabled() and _get_current_dispatch_mode() is None
        if measuring and input_ids.shape[1] == self.config.crash_at_seq_len:
            os.kill(os.getpid(), signal.SIGKILL)
        return super().forward(input_ids=input_ids, **kwargs)
'''


def save_crashing_model(folder: Path, crash_at_seq_len: int) -> Path:
    """A tiny classifier folder that dies (SIGKILL) when measured at `crash_at_seq_len` tokens."""
    from transformers import BertConfig, BertForSequenceClassification

    BertForSequenceClassification(BertConfig(
        vocab_size=256, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=32, max_position_embeddings=64,
    )).save_pretrained(folder)
    (folder / "modeling_crashing.py").write_text(MODELING)
    config = json.loads((folder / "config.json").read_text())
    config.update(
        model_type="crashing-bert", architectures=["CrashingBert"],
        crash_at_seq_len=crash_at_seq_len,
        auto_map={"AutoConfig": "modeling_crashing.CrashingConfig",
                  "AutoModelForSequenceClassification": "modeling_crashing.CrashingBert"},
    )
    (folder / "config.json").write_text(json.dumps(config))
    return folder

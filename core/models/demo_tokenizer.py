"""A deterministic word-hashing tokenizer for the demo text models, which ship without one.

Each lower-cased word (or punctuation mark) maps to a fixed id by a stable hash into the model's
vocabulary, so any text tokenizes offline, the same on every machine, with no vocabulary file. Ids
collide now and then; that is harmless for demo models and for models trained with this tokenizer.

It answers the subset of the transformers tokenizer call that core.quality uses, and saves as
`demo_tokenizer.json` beside a model so a folder trained with it says so.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

FILE_NAME = "demo_tokenizer.json"
FORMAT = "energy-console-demo-hash-v1"
PAD_ID, UNK_ID, CLS_ID, SEP_ID = 0, 1, 2, 3
FIRST_WORD_ID = 4
WORD_PATTERN = re.compile(r"[a-z0-9]+(?:'[a-z]+)?|[^\sa-z0-9]")


@dataclass(frozen=True)
class DemoTokenizer:
    vocab_size: int = 1024

    def __post_init__(self):
        if self.vocab_size <= FIRST_WORD_ID:
            raise ValueError(f"vocab_size {self.vocab_size} leaves no room for words")

    pad_token_id = PAD_ID

    def word_id(self, word: str) -> int:
        digest = hashlib.blake2b(word.encode("utf-8"), digest_size=8).digest()
        return FIRST_WORD_ID + int.from_bytes(digest, "big") % (self.vocab_size - FIRST_WORD_ID)

    def encode(self, text: str, add_special_tokens: bool = True) -> list[int]:
        ids = [self.word_id(w) for w in WORD_PATTERN.findall(text.lower())]
        return [CLS_ID, *ids, SEP_ID] if add_special_tokens else ids

    def __call__(
        self,
        text: str | list[str],
        max_length: int | None = None,
        padding: bool | str = False,
        truncation: bool = False,
        add_special_tokens: bool = True,
        return_tensors: str | None = None,
    ) -> dict[str, Any]:
        """Like a transformers tokenizer: input_ids and attention_mask, lists or ("pt") tensors."""
        texts = [text] if isinstance(text, str) else list(text)
        rows = [self.encode(t, add_special_tokens) for t in texts]
        if truncation and max_length is not None:
            rows = [_truncate(r, max_length, add_special_tokens) for r in rows]
        if padding:
            width = max_length if padding == "max_length" and max_length else max(map(len, rows))
            masks = [[1] * len(r) + [0] * (width - len(r)) for r in rows]
            rows = [r + [PAD_ID] * (width - len(r)) for r in rows]
        else:
            masks = [[1] * len(r) for r in rows]
        out: dict[str, Any] = {"input_ids": rows, "attention_mask": masks}
        if return_tensors == "pt":
            import torch

            out = {k: torch.tensor(v, dtype=torch.long) for k, v in out.items()}
        elif isinstance(text, str):
            out = {k: v[0] for k, v in out.items()}
        return out

    def save_pretrained(self, folder: str | Path) -> Path:
        path = Path(folder) / FILE_NAME
        path.write_text(json.dumps({"format": FORMAT, "vocab_size": self.vocab_size}) + "\n")
        return path

    @classmethod
    def from_folder(cls, folder: str | Path) -> DemoTokenizer | None:
        """The tokenizer saved in a model folder, or None when the folder has none."""
        path = Path(folder) / FILE_NAME
        if not path.is_file():
            return None
        data = json.loads(path.read_text())
        if data.get("format") != FORMAT:
            raise ValueError(f"{path}: unknown format {data.get('format')!r}; expected {FORMAT}")
        return cls(int(data["vocab_size"]))


def _truncate(ids: list[int], max_length: int, specials: bool) -> list[int]:
    if len(ids) <= max_length:
        return ids
    if specials and max_length >= 2:
        return ids[: max_length - 1] + [SEP_ID]
    return ids[:max_length]

"""Imported once by the runner's forkserver, so every worker forks with this code loaded.

transformers imports model code lazily: the first model built in a fresh process pays 3-5 s of
imports here. Importing the classes (no tensor work, so no thread pools start before fork) moves
that cost to the forkserver, once per session.
"""

import PIL.Image  # noqa: F401
import torch  # noqa: F401
import torch.ao.quantization  # noqa: F401
from transformers import (  # noqa: F401
    AutoConfig,
    AutoModelForCausalLM,
    AutoModelForImageClassification,
    AutoModelForSequenceClassification,
    AutoTokenizer,
    BertForSequenceClassification,
    GPT2LMHeadModel,
    ResNetForImageClassification,
    ViTForImageClassification,
)

import core.datasets  # noqa: F401
import core.demo_tokenizer  # noqa: F401
import core.quality.evaluate  # noqa: F401
import core.quality.reference  # noqa: F401
import core.worker  # noqa: F401
from core.compression import techniques

techniques()  # registers every technique family module

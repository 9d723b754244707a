"""Imported once by the runner's forkserver, so every worker forks with this code loaded.

transformers imports model code lazily: the first model built in a fresh process pays 3-5 s of
imports here. Importing the classes (no tensor work, so no thread pools start before fork) moves
that cost to the forkserver, once per session.
"""

import gc

import energy_console.core.models.demo_tokenizer  # noqa: F401
import energy_console.core.quality.datasets  # noqa: F401
import energy_console.core.quality.evaluate  # noqa: F401
import energy_console.core.quality.reference  # noqa: F401
import energy_console.core.worker.entry  # noqa: F401
import PIL.Image  # noqa: F401
import torch  # noqa: F401
import torch.ao.quantization  # noqa: F401
from energy_console.core.compression import techniques
from energy_console.core.worker.workloads import workloads
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

techniques()  # registers every technique family module
workloads()  # imports every workload module

# What the imports made lives as long as the forkserver: out of the collector's sight, so that
# no worker's collections walk it (nor touch its pages, which stay shared with the forkserver).
gc.collect()
gc.freeze()

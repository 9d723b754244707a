"""Imported by the forkserver of a session whose models transformers builds (their source's
`preload` names this module), so that every worker forks with transformers' model code loaded.

transformers imports model code lazily: the first model built in a fresh process pays 3-5 s of
imports here. Importing the classes (no tensor work, so no thread pools start before fork) moves
that cost to the forkserver, once per session.
"""

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

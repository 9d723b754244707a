"""Workloads: what a run times. `infer` (one forward pass per iteration, the default),
`generate` (causal LMs: text generation from a prompt set, prefill and decode measured apart) and
`train` (optimizer steps of fine-tuning on the model's dataset; core.worker.workloads.train).

A model entry picks its workload in the profile:

    models:
      - demo: demo/tiny-gpt2-random
        workload: generate
        dataset: ../data/prompts-text.jsonl        # JSONL {"prompt": ...} or one prompt a line
        generation: {do_sample: true, temperature: 0.7, top_p: 0.9, seed: 0}   # optional
      - demo: demo/tiny-gpt2-random
        workload: generate
        dataset: ../data/code-tasks.jsonl          # HumanEval-style: prompt, entry_point, test
        generation: {pass_at_1: true}              # optional: pass@1 of the greedy completions
        # fixed_length: true (the default): timed windows make exactly max_new_tokens per prompt
    inputs:
      max_new_tokens: [32]   # generate runs: one run per value (× batches × sequence lengths)

A train run's timed windows are optimizer steps (one iteration = one step of a batch), and its
optimizer comes from the model entry's `training:` mapping, which also serves the techniques that
train (`finetune`, `qat`):

      - demo: demo/tiny-bert-random
        workload: train
        dataset: ../data/sentiment-mini.csv        # a quarter of it is held out for accuracy
        training: {optimizer: adamw, lr: 0.001, amp: true}   # optional; dataset: to train apart

Decoding is greedy unless `generation.do_sample` is true. `pass_at_1: true` runs each greedy
completion against its task's tests after the energy windows (core.quality.code_exec), with
`pass_at_1_timeout_s` (default 10) per task; it needs a dataset whose lines carry `entry_point`
and `test`. The sequence length of a generate run is
the longest prompt it feeds (longer prompts keep their last tokens). Light on purpose: the profile
checker and the UI import it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from energy_console.core.spec.limits import limit


class Workload(StrEnum):
    """What a run times: forward passes, text generation, or optimizer steps."""

    INFER = "infer"
    GENERATE = "generate"
    TRAIN = "train"


GENERATE_TASKS = ("causal-lm",)
DEFAULT_MAX_NEW_TOKENS = (32,)

GENERATION_KEYS = ("do_sample", "temperature", "top_k", "top_p", "seed", "eos_token_id",
                   "pass_at_1", "pass_at_1_timeout_s", "fixed_length")
DEFAULT_PASS_AT_1_TIMEOUT_S = 10.0


class SettingError(ValueError):
    """A `generation:` or `training:` mapping that cannot run: `key` names the bad key inside it
    (None: the mapping as a whole), `problem` what is wrong and the fix."""

    def __init__(self, key: str | None, problem: str):
        self.key, self.problem = key, problem
        super().__init__(f"{key}: {problem}" if key else problem)


@dataclass(frozen=True)
class GenerationSettings:
    """Decoding settings of a generate run (greedy by default, so runs are deterministic)."""

    do_sample: bool = False
    temperature: float | None = None
    top_k: int | None = None
    top_p: float | None = None
    seed: int = 0
    eos_token_id: int | None = None  # None: the model's own
    pass_at_1: bool = False  # run the greedy completions against the dataset's tests
    pass_at_1_timeout_s: float = DEFAULT_PASS_AT_1_TIMEOUT_S  # wall clock per task
    # timed windows make exactly max_new_tokens per prompt (EOS suppressed until then), so every
    # variant is charged for the same tokens; false: each stops at its own EOS. Fidelity and
    # pass@1 always use the natural (EOS-stopped) output.
    fixed_length: bool = True

    def generate_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for transformers' `generate` (seed and EOS apart)."""
        out: dict[str, Any] = {"do_sample": self.do_sample}
        if self.do_sample:
            for name in ("temperature", "top_k", "top_p"):
                value = getattr(self, name)
                if value is not None:
                    out[name] = value
        return out

    def to_yaml(self) -> dict[str, Any]:
        return _changed_fields(self)


def generation_settings(raw: Any) -> GenerationSettings:
    """A model entry's `generation:` mapping, checked (numbers against core.spec.limits);
    SettingError names the key and the fix."""
    if raw is None:
        return GenerationSettings()
    _check_keys(raw, GENERATION_KEYS)
    do_sample = _flag(raw, "do_sample", False)
    temperature = _number(raw, "temperature", "generation")
    top_p = _number(raw, "top_p", "generation")
    top_k = _number(raw, "top_k", "generation")
    seed = _number(raw, "seed", "generation")
    eos = _number(raw, "eos_token_id", "generation")
    if not do_sample and any(v is not None for v in (temperature, top_p, top_k)):
        raise SettingError(None, "temperature, top_k and top_p apply only when sampling; add "
                           "`do_sample: true` or remove them (greedy decoding is the default)")
    pass_at_1 = _flag(raw, "pass_at_1", False)
    timeout = _number(raw, "pass_at_1_timeout_s", "generation")
    if timeout is not None and not pass_at_1:
        raise SettingError("pass_at_1_timeout_s", "applies only with `pass_at_1: true`; add it "
                           "or remove the timeout")
    return GenerationSettings(do_sample, temperature, top_k, top_p,
                              0 if seed is None else seed, eos, pass_at_1,
                              DEFAULT_PASS_AT_1_TIMEOUT_S if timeout is None else timeout,
                              _flag(raw, "fixed_length", True))


def _check_keys(raw: Any, keys: tuple[str, ...]) -> None:
    """A mapping of known keys only, or SettingError naming the allowed ones."""
    if not isinstance(raw, dict):
        raise SettingError(None, "expected a mapping with keys " + ", ".join(keys))
    unknown = sorted(set(raw) - set(keys))
    if unknown:
        raise SettingError(None, f"unknown key(s) {', '.join(map(str, unknown))}; allowed: "
                           + ", ".join(keys))


def _flag(raw: dict, key: str, default: bool) -> bool:
    value = raw.get(key, default)
    if not isinstance(value, bool):
        raise SettingError(key, f"{value!r} is not allowed; expected true or false")
    return value


def _number(raw: dict, key: str, section: str) -> Any:
    """raw[key] checked against its row `models[].{section}.{key}` of the limits table, as that
    row's kind; None when not given."""
    value = raw.get(key)
    if value is None:
        return None
    rule = limit(f"models[].{section}.{key}")
    problem = rule.problem(value)
    if problem:
        raise SettingError(key, problem)
    return rule.kind(value)


def _changed_fields(settings: Any) -> dict[str, Any]:
    """The fields that differ from their defaults: what a profile writes back."""
    default = type(settings)()
    return {f.name: getattr(settings, f.name) for f in dataclasses.fields(settings)
            if getattr(settings, f.name) != getattr(default, f.name)}


TRAINING_KEYS = ("dataset", "optimizer", "lr", "weight_decay", "amp", "holdout", "seed")
OPTIMIZERS = ("adamw", "adam", "sgd")


@dataclass(frozen=True)
class TrainingSettings:
    """How a model is fine-tuned: by the train workload and by the techniques that train.

    Without `dataset`, the model's own dataset is split: every `holdout`-th batch (a quarter by
    default) is kept for the accuracy after training and never trained on."""

    dataset: Any = None  # a separate training set (path or mapping, as `dataset:`)
    optimizer: str = "adamw"
    lr: float = 5e-5  # Hugging Face Trainer's default
    weight_decay: float = 0.0
    amp: bool = True  # autocast (bf16, else fp16 with a grad scaler) on CUDA; ignored on a CPU
    holdout: float = 0.25  # share of the model's dataset held out when no training set is given
    seed: int = 0

    def to_yaml(self) -> dict[str, Any]:
        return _changed_fields(self)


def training_settings(raw: Any) -> TrainingSettings:
    """A model entry's `training:` mapping, checked (numbers against core.spec.limits);
    SettingError names the key and the fix."""
    if raw is None:
        return TrainingSettings()
    _check_keys(raw, TRAINING_KEYS)
    optimizer = raw.get("optimizer", "adamw")
    if optimizer not in OPTIMIZERS:
        raise SettingError("optimizer", f"{optimizer!r} is not allowed; expected one of "
                           + ", ".join(OPTIMIZERS))
    amp = _flag(raw, "amp", True)
    dataset = raw.get("dataset")
    if dataset is not None and not (isinstance(dataset, str) or (isinstance(dataset, dict)
                                                                 and "path" in dataset)):
        raise SettingError("dataset", "expected a file or folder path, or a mapping with path:")
    lr = _number(raw, "lr", "training")
    decay = _number(raw, "weight_decay", "training")
    holdout = _number(raw, "holdout", "training")
    seed = _number(raw, "seed", "training")
    d = TrainingSettings()
    return TrainingSettings(dataset, optimizer, d.lr if lr is None else lr,
                            d.weight_decay if decay is None else decay, amp,
                            d.holdout if holdout is None else holdout, d.seed if seed is None
                            else seed)

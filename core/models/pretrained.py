"""Loading transformers checkpoints (hub ids and local folders share this path)."""

from __future__ import annotations

import json
from pathlib import Path

from energy_console.core.models.base import LoadedModel, ModelLoadError
from energy_console.core.spec.tasks import TASKS

AUTO_CLASSES = {
    "text-classification": "AutoModelForSequenceClassification",
    "causal-lm": "AutoModelForCausalLM",
    "image-classification": "AutoModelForImageClassification",
    "object-detection": "AutoModelForObjectDetection",
}

# Architecture name suffixes that tell the task when the profile does not.
ARCHITECTURE_TASKS = (
    ("ForSequenceClassification", "text-classification"),
    ("ForCausalLM", "causal-lm"),
    ("LMHeadModel", "causal-lm"),
    ("ForImageClassification", "image-classification"),
    ("ForObjectDetection", "object-detection"),
)


def task_from_architectures(architectures: list[str] | None) -> str | None:
    for arch in architectures or []:
        for suffix, task in ARCHITECTURE_TASKS:
            if arch.endswith(suffix):
                return task
    return None


MAX_CONFIG_BYTES = 16 << 20


def read_config(path) -> str:
    """A config.json's text, bounded (a config is kilobytes; a huge file is not one)."""
    with open(path, encoding="utf-8") as f:
        text = f.read(MAX_CONFIG_BYTES + 1)
    if len(text) > MAX_CONFIG_BYTES:
        raise ValueError(f"{path} is over {MAX_CONFIG_BYTES >> 20} MiB")
    return text


def task_from_config(path) -> str | None:
    """The task a config.json's architectures name, or None (unreadable, or none named)."""
    try:
        config = json.loads(read_config(path))
    except (OSError, ValueError):
        return None
    return task_from_architectures(config.get("architectures")) if isinstance(config, dict) \
        else None


def config_problem(config, entry, label: str) -> str | None:
    """What a config read without loading says will fail: no task to measure it as."""
    if not isinstance(config, dict):
        return f"{label}: config.json does not hold a JSON object; save the model again"
    if entry.task is None and task_from_architectures(config.get("architectures")) is None:
        return (f"{label}: cannot tell its task from its config (architectures: "
                f"{config.get('architectures')}); add `task:` with one of {', '.join(TASKS)}")
    return None


def load_pretrained(
    name_or_path: str, task: str | None, device: str, trust_remote_code: bool, label: str
) -> LoadedModel:
    """from_pretrained through the Auto class of the task; `label` names the model in messages."""
    import torch
    import transformers
    from energy_console.core.models.demo import make_input_factory
    from transformers import AutoConfig

    try:
        config = AutoConfig.from_pretrained(name_or_path, trust_remote_code=trust_remote_code)
    except OSError as exc:
        raise ModelLoadError(_not_found_message(label, exc)) from exc
    except ValueError as exc:
        if "trust_remote_code" in str(exc):
            raise ModelLoadError(
                f"{label} needs custom code from its repository; it runs only if the profile "
                "says `trust_remote_code: true` for this model (read that code first)"
            ) from exc
        raise ModelLoadError(f"{label}: {exc}") from exc
    task = task or task_from_architectures(getattr(config, "architectures", None))
    if task not in TASKS:
        raise ModelLoadError(
            f"{label}: cannot tell its task from its config (architectures: "
            f"{getattr(config, 'architectures', None)}); add `task:` with one of {', '.join(TASKS)}"
        )
    auto_class = getattr(transformers, AUTO_CLASSES[task])
    torch.manual_seed(0)  # heads missing from a checkpoint are initialised the same every run
    try:
        module, info = auto_class.from_pretrained(
            name_or_path, trust_remote_code=trust_remote_code, output_loading_info=True)
    except OSError as exc:
        raise ModelLoadError(_not_found_message(label, exc)) from exc
    except ValueError as exc:
        raise ModelLoadError(f"{label} cannot be loaded as {task}: {exc}") from exc
    except RuntimeError as exc:  # weights whose shapes differ from what config.json describes
        if "mismatch" not in str(exc).lower():
            raise
        raise ModelLoadError(
            f"{label}: weights in the checkpoint have other shapes than its config.json "
            f"describes ({_first_line(exc)}); {WEIGHTS_FIX}") from exc
    notes = checked_loading_info(label, module, info)
    module = module.eval().to(device)
    tokenizer = image_processor = None
    if task in ("image-classification", "object-detection"):
        image_processor = _optional(transformers.AutoImageProcessor, name_or_path)
    else:
        tokenizer = _optional(transformers.AutoTokenizer, name_or_path)
    labels = None
    if task != "causal-lm" and getattr(config, "id2label", None):
        labels = [config.id2label[i] for i in sorted(config.id2label)]
    return LoadedModel(
        module=module,
        task=task,
        make_inputs=make_input_factory(module, task, device),
        config=config,
        tokenizer=tokenizer,
        image_processor=image_processor,
        label_names=labels,
        notes=notes,
        detection_head=detection_head(config) if task == "object-detection" else None,
    )


def detection_head(config) -> str:
    """How a transformers detector's logits read (core.detection.HEADS): RT-DETR scores each
    class with a sigmoid; DETR-style models (DETR, YOLOS, Conditional / Deformable DETR with a
    no-object class) with a softmax."""
    return "sigmoid" if str(getattr(config, "model_type", "")).startswith("rt_detr") else "softmax"


WEIGHTS_FIX = ("a measurement would run randomly initialised weights. Fix `architectures` and "
               "`model_type` in config.json to the model the weights belong to, or save the "
               "model again with model.save_pretrained(folder)")


def _keys(keys, limit: int = 3) -> str:
    keys = sorted(keys)
    shown = ", ".join(keys[:limit])
    return shown + (f", ... ({len(keys) - limit} more)" if len(keys) > limit else "")


def checked_loading_info(label: str, module, info: dict) -> list[str]:
    """Refuse a checkpoint that does not hold the model its config names; returns notes.

    from_pretrained fills weights it did not find with random ones and drops the ones it could
    not place, and says so only in its loading info. A task head missing from a base checkpoint
    (bert-base-uncased loaded for text-classification) is expected: a note says it is random.
    Missing, unused or reshaped weights of the model's body mean config.json describes another
    model than its weights: ModelLoadError, naming how many and the fix.
    """
    prefix = getattr(module, "base_model_prefix", "") or ""

    def in_body(key: str) -> bool:
        return not prefix or key == prefix or key.startswith(prefix + ".")

    missing = set(info.get("missing_keys") or ())
    unexpected = set(info.get("unexpected_keys") or ())
    mismatched = [k[0] if isinstance(k, tuple) else k for k in info.get("mismatched_keys") or ()]
    body_missing = {k for k in missing if in_body(k)}
    body_unexpected = {k for k in unexpected if in_body(k)}
    architecture = type(module).__name__
    if body_missing or body_unexpected or mismatched:
        problems = []
        if missing:
            problems.append(f"{len(missing)} weight(s) the {architecture} needs are not in the "
                            f"checkpoint ({_keys(missing)})")
        if unexpected:
            problems.append(f"{len(unexpected)} weight(s) in the checkpoint do not belong to it "
                            f"({_keys(unexpected)})")
        if mismatched:
            problems.append(f"{len(mismatched)} weight(s) have another shape "
                            f"({_keys(mismatched)})")
        raise ModelLoadError(
            f"{label}: its weights do not fit the architecture its config.json names "
            f"({architecture}): " + "; ".join(problems) + f"; {WEIGHTS_FIX}")
    notes = []
    if missing:
        notes.append(f"{label}: {len(missing)} weight(s) of the task head are not in the "
                     f"checkpoint and were initialised at random ({_keys(missing)}): quality "
                     "figures are only meaningful as fidelity")
    if unexpected:
        notes.append(f"{label}: {len(unexpected)} weight(s) in the checkpoint belong to another "
                     f"head and were not used ({_keys(unexpected)})")
    return notes


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0].rstrip(".") if text else type(exc).__name__


TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "vocab.json",
                   "tokenizer.model", "spiece.model")


def _optional(auto_class, name_or_path: str):
    folder = Path(name_or_path)
    if (auto_class.__name__ == "AutoTokenizer" and folder.is_dir()
            and not any((folder / name).exists() for name in TOKENIZER_FILES)):
        # transformers 5 would make a tokenizer of special tokens only: every word unknown
        return None
    try:
        return auto_class.from_pretrained(name_or_path)
    except (OSError, ValueError, KeyError):
        return None


def _not_found_message(label: str, exc: Exception) -> str:
    first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return (
        f"{label} could not be loaded: {first_line.rstrip('.')}. "
        "If it is a hub id, check the spelling and that it is in the local Hugging Face cache "
        "when the hub is unreachable (download it with `hf download ID` on a machine with "
        "network); a local folder must hold config.json and the weights (save_pretrained layout)"
    )

"""Loading transformers checkpoints (hub ids and local folders share this path)."""

from __future__ import annotations

from pathlib import Path

from energy_console.core.models.base import TASKS, LoadedModel, ModelLoadError

AUTO_CLASSES = {
    "text-classification": "AutoModelForSequenceClassification",
    "causal-lm": "AutoModelForCausalLM",
    "image-classification": "AutoModelForImageClassification",
}

# Architecture name suffixes that tell the task when the profile does not.
ARCHITECTURE_TASKS = (
    ("ForSequenceClassification", "text-classification"),
    ("ForCausalLM", "causal-lm"),
    ("LMHeadModel", "causal-lm"),
    ("ForImageClassification", "image-classification"),
)


def task_from_architectures(architectures: list[str] | None) -> str | None:
    for arch in architectures or []:
        for suffix, task in ARCHITECTURE_TASKS:
            if arch.endswith(suffix):
                return task
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
        module = auto_class.from_pretrained(name_or_path, trust_remote_code=trust_remote_code)
    except OSError as exc:
        raise ModelLoadError(_not_found_message(label, exc)) from exc
    except ValueError as exc:
        raise ModelLoadError(f"{label} cannot be loaded as {task}: {exc}") from exc
    module = module.eval().to(device)
    tokenizer = image_processor = None
    if task == "image-classification":
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
    )


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

"""The tasks a model can have, and how each is sized: text by sequence length, images by
resolution. Model sources, the profile checker and the plan read them."""

from __future__ import annotations

TASKS = ("text-classification", "causal-lm", "image-classification", "object-detection")
TEXT_TASKS = ("text-classification", "causal-lm")
IMAGE_TASKS = ("image-classification", "object-detection")


def input_family(task: str) -> str:
    """'text' (sized by sequence length) or 'image' (sized by resolution)."""
    return "image" if task in IMAGE_TASKS else "text"

"""Built-in offline demo models: small transformers configs with random weights.

They exist so a session runs on a machine with no network. Their weights are random (seeded, so the
same on every load), and their names end in `-random` so nobody mistakes them for trained models.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from energy_console.core.models import detectors
from energy_console.core.models.base import (
    TRANSFORMERS_CLASSES,
    LoadedModel,
    ModelDescription,
    ModelLoadError,
)

if TYPE_CHECKING:
    from transformers import PreTrainedModel

DEMO_PREFIX = "demo/"
WEIGHT_SEED = 1234


@dataclass(frozen=True)
class DemoModel:
    ref: str
    task: str
    summary: str
    build: Callable[[], PreTrainedModel]
    head: str | None = None  # object detectors: how outputs read (core.detection.HEADS)


def _tiny_bert():
    from transformers import BertConfig, BertForSequenceClassification

    return BertForSequenceClassification(
        BertConfig(
            vocab_size=1024,
            hidden_size=128,
            num_hidden_layers=2,
            num_attention_heads=2,
            intermediate_size=512,
            max_position_embeddings=512,
            num_labels=2,
            id2label={0: "negative", 1: "positive"},
            label2id={"negative": 0, "positive": 1},
        )
    )


def _tiny_gpt2():
    from transformers import GPT2Config, GPT2LMHeadModel

    return GPT2LMHeadModel(
        GPT2Config(
            vocab_size=1024, n_embd=128, n_layer=2, n_head=2, n_positions=512,
            bos_token_id=1023, eos_token_id=1023,
        )
    )


def _tiny_resnet():
    from transformers import ResNetConfig, ResNetForImageClassification

    return ResNetForImageClassification(
        ResNetConfig(
            embedding_size=16,
            hidden_sizes=[16, 32, 64, 128],
            depths=[1, 1, 1, 1],
            layer_type="basic",
            num_labels=10,
        )
    )


def _tiny_vit():
    from transformers import ViTConfig, ViTForImageClassification

    return ViTForImageClassification(
        ViTConfig(
            image_size=64,
            patch_size=8,
            hidden_size=192,
            num_hidden_layers=4,
            num_attention_heads=3,
            intermediate_size=768,
            num_labels=10,
        )
    )


DEMO_MODELS: dict[str, DemoModel] = {
    m.ref: m
    for m in (
        DemoModel(
            "demo/tiny-bert-random",
            "text-classification",
            "BERT-like encoder, 2 layers, hidden 128, 2 labels, random weights",
            _tiny_bert,
        ),
        DemoModel(
            "demo/tiny-gpt2-random",
            "causal-lm",
            "GPT-2-like decoder, 2 layers, hidden 128, vocab 1024, random weights",
            _tiny_gpt2,
        ),
        DemoModel(
            "demo/tiny-resnet-random",
            "image-classification",
            "ResNet-like CNN (conv only but the head), 4 stages, 10 labels, random weights",
            _tiny_resnet,
        ),
        DemoModel(
            "demo/tiny-vit-random",
            "image-classification",
            "ViT-like (Linear-heavy), 4 layers, hidden 192, patch 8, 10 labels, random weights",
            _tiny_vit,
        ),
        DemoModel(
            "demo/tiny-yolos-random",
            "object-detection",
            "YOLOS-like ViT detector, 2 layers, hidden 96, 20 detection tokens, 3 shape labels",
            detectors.tiny_yolos,
            "softmax",
        ),
        DemoModel(
            "demo/tiny-detr-random",
            "object-detection",
            "DETR-like (ResNet backbone, 1+1 layers, d_model 64, 20 queries), 3 shape labels",
            detectors.tiny_detr,
            "softmax",
        ),
        DemoModel(
            "demo/tiny-rtdetr-random",
            "object-detection",
            "RT-DETR-like (ResNet backbone, hybrid encoder, 20 queries), 3 shape labels",
            detectors.tiny_rtdetr,
            "sigmoid",
        ),
        DemoModel(
            "demo/ssdlite320-mobilenet-v3-random",
            "object-detection",
            "torchvision SSDlite320-MobileNetV3-Large, 3 shape labels (needs torchvision)",
            detectors.ssdlite320_mobilenet_v3,
            "torchvision",
        ),
        DemoModel(
            "demo/ssd300-vgg16-random",
            "object-detection",
            "torchvision SSD300-VGG16, 3 shape labels (needs torchvision)",
            detectors.ssd300_vgg16,
            "torchvision",
        ),
        DemoModel(
            "demo/fasterrcnn-mobilenet-v3-random",
            "object-detection",
            "torchvision Faster R-CNN MobileNetV3-Large 320 FPN, 3 shape labels (needs "
            "torchvision)",
            detectors.fasterrcnn_mobilenet_v3,
            "torchvision",
        ),
    )
}


def describe_all() -> list[ModelDescription]:
    return [ModelDescription(m.ref, m.task, m.summary) for m in DEMO_MODELS.values()]


def text_input_factory(vocab_size: int, device: str):
    def make_inputs(batch_size: int, seq_len: int, seed: int = 0) -> dict:
        import torch

        gen = torch.Generator().manual_seed(seed)
        ids = torch.randint(0, vocab_size, (batch_size, seq_len), generator=gen)
        return {
            "input_ids": ids.to(device),
            "attention_mask": torch.ones_like(ids).to(device),
        }

    return make_inputs


def image_input_factory(channels: int, device: str, interpolate_pos_encoding: bool = False):
    def make_inputs(batch_size: int, resolution: int, seed: int = 0) -> dict:
        import torch

        gen = torch.Generator().manual_seed(seed)
        pixels = torch.randn(batch_size, channels, resolution, resolution, generator=gen)
        inputs: dict[str, Any] = {"pixel_values": pixels.to(device)}
        if interpolate_pos_encoding:
            inputs["interpolate_pos_encoding"] = True
        return inputs

    return make_inputs


def make_input_factory(module, task: str, device: str):
    """Synthetic inputs fitting a transformers model: token ids in its vocabulary, or pixels."""
    config = module.config
    if task in ("text-classification", "causal-lm"):
        return text_input_factory(config.vocab_size, device)
    channels = getattr(config, "num_channels", 3)
    # ViT-style models take any resolution only when asked to interpolate position embeddings.
    interpolate = "interpolate_pos_encoding" in inspect.signature(module.forward).parameters
    return image_input_factory(channels, device, interpolate)


class DemoSource:
    key = "demo"
    option_keys: tuple[str, ...] = ()

    def check_options(self, options) -> tuple[str, str] | None:
        return None  # no keys of its own

    def claims(self, text: str) -> bool:
        return text.startswith(DEMO_PREFIX)

    def check_ref(self, ref: str) -> str | None:
        if ref in DEMO_MODELS:
            return None
        return f"unknown demo model {ref!r}; built-in: " + ", ".join(DEMO_MODELS)

    def loading_from(self, entry) -> str:
        return "built from its config"

    def preload(self, entry) -> tuple[str, ...]:
        return (TRANSFORMERS_CLASSES,)  # transformers configs, the torchvision demos' included

    def known_task(self, ref: str) -> str | None:
        demo = DEMO_MODELS.get(ref)
        return demo.task if demo else None

    def preflight(self, entry) -> str | None:
        return self.check_ref(entry.ref)

    def config_task(self, entry) -> str | None:
        return self.known_task(entry.ref)

    def load(self, entry, device: str) -> LoadedModel:
        import torch

        demo = DEMO_MODELS.get(entry.ref)
        if demo is None:
            raise ModelLoadError(
                f"unknown demo model {entry.ref!r}; the built-in ones are: "
                + ", ".join(DEMO_MODELS)
                + " (see `energy-console list models`)"
            )
        torch.manual_seed(WEIGHT_SEED)
        module = demo.build().eval().to(device)
        if demo.head == "torchvision":  # no transformers config; labels 1-3 after background
            return LoadedModel(
                module=module, task=demo.task, make_inputs=image_input_factory(3, device),
                label_names=list(detectors.SHAPE_LABELS), notes=[RANDOM_NOTE],
                detection_head=demo.head)
        config = module.config
        labels = None
        if demo.task != "causal-lm":
            labels = [config.id2label[i] for i in sorted(config.id2label)]
        return LoadedModel(
            module=module,
            task=demo.task,
            make_inputs=make_input_factory(module, demo.task, device),
            config=config,
            label_names=labels,
            notes=[RANDOM_NOTE],
            detection_head=demo.head,
        )


RANDOM_NOTE = "random weights: quality figures are only meaningful as fidelity"


SOURCE = DemoSource()

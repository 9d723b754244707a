"""Built-in object detectors: tiny transformers detectors (DETR, YOLOS, RT-DETR) and torchvision's
mobile detectors, all with random, seeded weights and the three labels of the shipped set
(data/shapes-detect: circle, square, triangle).

The transformers ones build from configs anywhere; their initialisation is widened (and YOLOS's
detection tokens drawn apart) so that random queries find different boxes, as trained ones do.
The torchvision ones need a torchvision that loads with this torch; where it does not (no wheel,
or a CUDA wheel beside a CPU torch: `operator torchvision::nms does not exist`) the run is
skipped with that reason.
"""

from __future__ import annotations

from typing import Any

SHAPE_LABELS = ("circle", "square", "triangle")


def _labels() -> dict[str, Any]:
    return {"num_labels": len(SHAPE_LABELS), "id2label": dict(enumerate(SHAPE_LABELS)),
            "label2id": {name: i for i, name in enumerate(SHAPE_LABELS)}}


def _tiny_resnet_backbone(out_features: list[str]):
    from transformers import ResNetConfig

    return ResNetConfig(embedding_size=16, hidden_sizes=[16, 32, 64, 128], depths=[1, 1, 1, 1],
                        layer_type="basic",
                        out_features=out_features)  # type: ignore[call-arg]  # a backbone kwarg


def tiny_yolos():
    import torch
    from transformers import YolosConfig, YolosForObjectDetection

    model = YolosForObjectDetection(YolosConfig(
        image_size=[64, 64], patch_size=8, hidden_size=96, num_hidden_layers=2,
        num_attention_heads=2, intermediate_size=192, num_detection_tokens=20,
        initializer_range=0.1, **_labels()))
    # YOLOS starts its detection tokens equal: every token would predict the same box
    with torch.no_grad():
        model.vit.embeddings.detection_tokens.normal_(0.0, 1.0)
    return model


def tiny_detr():
    from transformers import DetrConfig, DetrForObjectDetection

    return DetrForObjectDetection(DetrConfig(
        use_timm_backbone=False, use_pretrained_backbone=False,
        backbone_config=_tiny_resnet_backbone(["stage4"]), d_model=64, encoder_layers=1,
        decoder_layers=1, encoder_attention_heads=2, decoder_attention_heads=2,
        encoder_ffn_dim=128, decoder_ffn_dim=128, num_queries=20, init_std=0.3, **_labels()))


def tiny_rtdetr():
    from transformers import RTDetrConfig, RTDetrForObjectDetection, RTDetrResNetConfig

    backbone = RTDetrResNetConfig(embedding_size=16, hidden_sizes=[16, 32, 64, 128],
                                  depths=[1, 1, 1, 1], layer_type="basic",
                                  out_features=["stage2", "stage3", "stage4"])
    return RTDetrForObjectDetection(RTDetrConfig(
        backbone_config=backbone, use_pretrained_backbone=False, use_timm_backbone=False,
        encoder_in_channels=[32, 64, 128], feat_strides=[8, 16, 32], d_model=64,
        encoder_hidden_dim=64, encoder_ffn_dim=128, decoder_ffn_dim=128,
        encoder_attention_heads=2, decoder_attention_heads=2, encoder_layers=1,
        decoder_layers=1, decoder_in_channels=[64, 64, 64], num_queries=20, num_denoising=0,
        **_labels()))


def torchvision_detection():
    """torchvision.models.detection, or NotApplicable saying why it cannot be used here."""
    from energy_console.core.models.base import NotApplicable

    try:
        import torch
        import torchvision.models.detection as detection

        torch.ops.torchvision.nms  # noqa: B018 - a CUDA wheel beside a CPU torch fails here
    except Exception as exc:  # ImportError, or RuntimeError/AttributeError from the op registry
        raise NotApplicable(
            f"torchvision cannot be used here ({type(exc).__name__}: {exc}); the torchvision "
            "detectors need a torchvision build that matches this torch (pip install "
            "torchvision on a box where its wheel loads, e.g. a CUDA box)") from None
    return detection


def _torchvision_builder(name: str):
    def build():
        constructor = getattr(torchvision_detection(), name)
        # torchvision's class 0 is the background: three shapes are classes 1-3
        return constructor(weights=None, weights_backbone=None, num_classes=len(SHAPE_LABELS) + 1)

    return build


ssdlite320_mobilenet_v3 = _torchvision_builder("ssdlite320_mobilenet_v3_large")
ssd300_vgg16 = _torchvision_builder("ssd300_vgg16")
fasterrcnn_mobilenet_v3 = _torchvision_builder("fasterrcnn_mobilenet_v3_large_320_fpn")

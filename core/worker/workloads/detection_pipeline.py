"""What an object-detection run times: pre-processing, the detector, post-processing.

On a phone the resize, the normalisation, the score threshold and NMS are part of what a
detection costs, so one timed call of a detection run is all of it, from decoded uint8 images
(any size) to boxes in their pixels:

  1. resize each image to the run's resolution (bilinear, antialiased), scale to [0, 1],
     normalise with the model's mean and std, stack into a batch;
  2. the detector (torch, or the ONNX Runtime session a technique put in its place);
  3. per image: class scores (softmax without the no-object class for DETR / YOLOS, sigmoid for
     RT-DETR), the best class of each query, score threshold, class-aware NMS in plain torch,
     the best `max_detections`, boxes scaled back to the original image.

torchvision detectors (SSD, Faster R-CNN) do their own resize, normalisation and NMS inside
the module; step 3 then keeps the threshold and the scaling back.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

SCORE_THRESHOLD = 0.05  # COCO evaluations keep low-score boxes: they cost nothing in mAP
IOU_THRESHOLD = 0.5  # class-aware NMS
MAX_DETECTIONS = 100  # per image, COCO's limit
IMAGENET_MEAN_STD = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))

# How a detector's outputs read: `softmax` (logits with a last no-object class, boxes as
# normalised cx, cy, w, h: DETR, YOLOS), `sigmoid` (one logit per class, no no-object: RT-DETR),
# `torchvision` (a list of dicts with boxes in input pixels, scores and labels, NMS done).
HEADS = ("softmax", "sigmoid", "torchvision")


@dataclass(frozen=True)
class Detections:
    """One image's detections: tensors of boxes (N, 4; x1, y1, x2, y2 px), scores, labels."""

    boxes: Any
    scores: Any
    labels: Any


class DetectionPipeline:
    """images (list of uint8 tensors, C x H x W) -> list[Detections]; every step timed."""

    def __init__(self, module, head: str, resolution: int, device: str,
                 mean_std: tuple[tuple[float, ...], tuple[float, ...]] = IMAGENET_MEAN_STD,
                 input_dtype=None):
        import torch

        if head not in HEADS:
            raise ValueError(f"unknown detection head {head!r}; known: {', '.join(HEADS)}")
        self.module, self.head, self.resolution, self.device = module, head, resolution, device
        self.mean = torch.tensor(mean_std[0], device=device).view(1, -1, 1, 1)
        self.std = torch.tensor(mean_std[1], device=device).view(1, -1, 1, 1)
        self.input_dtype = input_dtype

    @classmethod
    def for_model(cls, loaded, resolution: int, device: str) -> DetectionPipeline:
        """The pipeline of a loaded detector: its head, and its image processor's mean and std
        where it has them (ImageNet's otherwise)."""
        processor = loaded.image_processor
        mean, std = getattr(processor, "image_mean", None), getattr(processor, "image_std", None)
        mean_std = (tuple(mean), tuple(std)) if mean and std else IMAGENET_MEAN_STD
        return cls(loaded.module, loaded.detection_head or "softmax", resolution, device,
                   mean_std)

    def with_module(self, module, input_dtype=None) -> DetectionPipeline:
        """The same pre- and post-processing around another (compressed) module."""
        mean_std = (tuple(self.mean.flatten().tolist()), tuple(self.std.flatten().tolist()))
        return DetectionPipeline(module, self.head, self.resolution, self.device, mean_std,
                                 input_dtype)

    def __call__(self, images: list) -> list[Detections]:
        pixels = self.preprocess(images)
        if self.head == "torchvision":
            outputs = self.module(list(pixels))
            # torchvision's label 0 is the background: the model's labels are 1 lower
            return [self._keep(o["boxes"], o["scores"], o["labels"] - 1, image, nms=False)
                    for o, image in zip(outputs, images, strict=True)]
        outputs = self.module(pixel_values=pixels)
        return self.postprocess(outputs.logits, outputs.pred_boxes, images)

    def preprocess(self, images: list):
        """The batch the detector takes: resized, in [0, 1], normalised (not for torchvision,
        whose models normalise themselves)."""
        import torch

        size = (self.resolution, self.resolution)
        pixels = torch.cat([
            torch.nn.functional.interpolate(image[None].to(self.device).float(), size=size,
                                            mode="bilinear", antialias=True, align_corners=False)
            for image in images]) / 255.0
        if self.head != "torchvision":
            pixels = (pixels - self.mean) / self.std
        return pixels if self.input_dtype is None else pixels.to(self.input_dtype)

    def postprocess(self, logits, pred_boxes, images: list) -> list[Detections]:
        logits, pred_boxes = logits.float(), pred_boxes.float()
        if self.head == "softmax":
            scores, labels = logits.softmax(-1)[..., :-1].max(-1)
        else:
            scores, labels = logits.sigmoid().max(-1)
        out = []
        for i, image in enumerate(images):
            height, width = image.shape[-2:]
            cx, cy, w, h = pred_boxes[i].unbind(-1)
            boxes = _stack_xyxy(cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2)
            boxes = boxes * boxes.new_tensor([width, height, width, height])
            out.append(self._keep(boxes, scores[i], labels[i], image, nms=True))
        return out

    def _keep(self, boxes, scores, labels, image, *, nms: bool) -> Detections:
        if self.head == "torchvision":  # boxes are in the resized image's pixels
            height, width = image.shape[-2:]
            boxes = boxes * boxes.new_tensor([width, height, width, height]) / self.resolution
        keep = scores >= SCORE_THRESHOLD
        boxes, scores, labels = boxes[keep], scores[keep], labels[keep]
        if nms:
            keep = class_aware_nms(boxes, scores, labels, IOU_THRESHOLD)
            boxes, scores, labels = boxes[keep], scores[keep], labels[keep]
        top = scores.argsort(descending=True)[:MAX_DETECTIONS]
        return Detections(boxes[top], scores[top], labels[top])


def _stack_xyxy(x1, y1, x2, y2):
    import torch

    return torch.stack([x1, y1, x2, y2], dim=-1)


def box_iou(a, b):
    """IoU of every box in a (N, 4) with every box in b (M, 4), x1 y1 x2 y2."""
    area_a = (a[:, 2] - a[:, 0]).clamp_min(0) * (a[:, 3] - a[:, 1]).clamp_min(0)
    area_b = (b[:, 2] - b[:, 0]).clamp_min(0) * (b[:, 3] - b[:, 1]).clamp_min(0)
    top_left = a[:, None, :2].maximum(b[None, :, :2])
    bottom_right = a[:, None, 2:].minimum(b[None, :, 2:])
    inter = (bottom_right - top_left).clamp_min(0).prod(-1)
    union = area_a[:, None] + area_b[None, :] - inter
    return inter / union.clamp_min(1e-12)


def class_aware_nms(boxes, scores, labels, iou_threshold: float):
    """Indices of the boxes greedy NMS keeps, highest score first; boxes of different labels
    never suppress each other (torchvision's batched_nms, in plain torch)."""
    import torch

    if boxes.numel() == 0:
        return torch.zeros(0, dtype=torch.long, device=boxes.device)
    offset = labels.to(boxes.dtype)[:, None] * (boxes.max() + 1)  # labels never overlap
    order = scores.argsort(descending=True)
    iou = box_iou(boxes[order] + offset[order], boxes[order] + offset[order])
    suppressed = torch.zeros(len(order), dtype=torch.bool, device=boxes.device)
    keep = []
    for i in range(len(order)):
        if suppressed[i]:
            continue
        keep.append(i)
        suppressed |= iou[i] > iou_threshold
    return order[torch.tensor(keep, dtype=torch.long, device=boxes.device)]

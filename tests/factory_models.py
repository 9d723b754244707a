"""A research group's own model, as the `factory:` source loads it: a plain nn.Module class
(no transformers), and a helper that trains it on the shipped image set and saves its state
dict, as a lab's checkpoint file would be."""

from __future__ import annotations

from pathlib import Path

import torch

from tests.session_helpers import ROOT

IMAGES = ROOT / "data" / "images-mini"
MEAN_STD = (0.5, 0.5)


class SmallCNN(torch.nn.Module):
    """Two convolutions and a Linear head over 32×32 RGB images."""

    def __init__(self, num_classes: int, width: int = 8):
        super().__init__()
        self.features = torch.nn.Sequential(
            torch.nn.Conv2d(3, width, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
            torch.nn.Conv2d(width, 2 * width, 3, padding=1), torch.nn.ReLU(),
            torch.nn.AdaptiveAvgPool2d(4))
        self.head = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(32 * width, 64),
                                        torch.nn.ReLU(), torch.nn.Linear(64, num_classes))

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(pixels))


def class_names() -> list[str]:
    return sorted(p.name for p in IMAGES.iterdir() if p.is_dir())


def train_small_cnn(path: Path, width: int = 8, steps: int = 80) -> Path:
    """SmallCNN fitted to the shipped 30 images (normalised as the profile says) and its state
    dict saved to `path`."""
    from energy_console.core.quality.datasets import read_image

    names = class_names()
    images, labels = [], []
    for label, name in enumerate(names):
        for file in sorted((IMAGES / name).iterdir()):
            images.append((read_image(file) - MEAN_STD[0]) / MEAN_STD[1])
            labels.append(label)
    pixels, targets = torch.stack(images), torch.tensor(labels)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a busy test box: one thread trains fastest
    torch.manual_seed(0)
    model = SmallCNN(len(names), width)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(steps):
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(model(pixels), targets).backward()
        optimizer.step()
    torch.set_num_threads(threads)
    torch.save(model.state_dict(), path)
    return path

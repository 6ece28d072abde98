"""Small models and data shared by the distillation tests (imported by the tests and
by the DDP worker script, which runs in fresh processes)."""

from pathlib import Path

import numpy as np
import torch.nn as nn
from PIL import Image

from distill.models import _REGISTRY, register_backbone

TINY = "tiny_gn_cnn"


def tiny_cnn() -> tuple[nn.Module, int]:
    """Conv net with GroupNorm: batch-independent, so DDP and single-process runs agree exactly."""
    net = nn.Sequential(
        nn.Conv2d(3, 8, 3, stride=2, padding=1),
        nn.GroupNorm(2, 8),
        nn.ReLU(),
        nn.Conv2d(8, 16, 3, stride=2, padding=1),
        nn.GroupNorm(4, 16),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
    )
    return net, 16


if TINY not in _REGISTRY:
    register_backbone(TINY)(tiny_cnn)


def make_image_folder(root: Path, classes: int = 2, per_class: int = 8, size: int = 40, seed: int = 0) -> Path:
    """An ImageNet-style folder of random RGB PNGs: root/<class>/<i>.png."""
    rng = np.random.default_rng(seed)
    for c in range(classes):
        (root / f"class{c}").mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            pixels = rng.integers(0, 256, size=(size, size, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / f"class{c}" / f"{i}.png")
    return root

"""A tiny registered backbone with BatchNorm (the BN-freezing tests need running statistics),
and ImageNet-style folders of random images named like ImageNet files."""

from pathlib import Path

import numpy as np
import torch.nn as nn
from PIL import Image

from distill.models import _REGISTRY, register_backbone

TINY_BN = "tiny_bn_cnn"


def tiny_bn_cnn() -> tuple[nn.Module, int]:
    net = nn.Sequential(
        nn.Conv2d(3, 8, 3, stride=2, padding=1),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.Conv2d(8, 16, 3, stride=2, padding=1),
        nn.BatchNorm2d(16),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
    )
    return net, 16


if TINY_BN not in _REGISTRY:
    register_backbone(TINY_BN)(tiny_bn_cnn)


def make_imagenet(
    root: Path, classes: int = 3, train_per_class: int = 6, val_per_class: int = 2, size: int = 12, seed: int = 0
) -> Path:
    """root/train/n0000000<c>/n0000000<c>_<i>.JPEG and root/val/...: class c has mean colour c."""
    rng = np.random.default_rng(seed)
    for split, per_class in (("train", train_per_class), ("val", val_per_class)):
        for c in range(classes):
            wnid = f"n{c:08d}"
            (root / split / wnid).mkdir(parents=True, exist_ok=True)
            for i in range(per_class):
                pixels = np.clip(rng.normal(60 + 70 * c, 30, size=(size, size, 3)), 0, 255).astype(np.uint8)
                Image.fromarray(pixels).save(root / split / wnid / f"{wnid}_{i}.JPEG")
    return root

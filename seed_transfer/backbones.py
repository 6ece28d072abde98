"""Any checkpoint as a frozen feature extractor: the one loader of every transfer tool.

Reads every layout :mod:`distill.checkpoints` knows (SEED student export, MoCo v1/v2/v3,
SwAV, SimCLR, DINO, torchvision, timm), builds a randomly initialised network, or gives
the raw-pixel baseline (``weights="pixels"``): the image itself, average-pooled to a
16x16 grid and flattened, so a table shows what a representation adds over the input.
"""

import hashlib
from pathlib import Path

import torch
import torch.nn as nn

from distill.checkpoints import load_pretrained
from distill.models import build_backbone
from seed_core.config import ConfigError, resolve_path

RANDOM = "random"
PIXELS = "pixels"
PIXEL_GRID = 16  # 3 x 16 x 16 = 768 features, the size of a small network's embedding
# The flag of every tool that converts or fine-tunes a checkpoint (convert_to_d2, transfer_det,
# transfer_seg), named when the safe unpickler refuses its weights
FLAG_UNSAFE_OPTION = "--allow-unsafe-pickle"


def is_random(weights: str | None) -> bool:
    """No checkpoint: None, "random", or "" (Detectron2's ``MODEL.WEIGHTS`` for its own initialisation)."""
    return weights in (None, "", RANDOM)


def weights_name(weights: str | None) -> str:
    """The row label of an initialisation: "random", or the checkpoint's file name up to its first
    dot (``moco_v2_800ep_pretrain.pth.tar`` -> ``moco_v2_800ep_pretrain``)."""
    return RANDOM if is_random(weights) else Path(weights).name.split(".")[0]


def is_pixels(weights: str | None) -> bool:
    return weights == PIXELS


def pixel_features() -> nn.Module:
    """Raw-pixel baseline: normalised image, average-pooled to a fixed grid, flattened."""
    return nn.Sequential(nn.AdaptiveAvgPool2d(PIXEL_GRID), nn.Flatten())


def require_weights(weights: str | None, key: str, keywords: tuple[str, ...] = (RANDOM, PIXELS)) -> None:
    """Refuse, before anything runs or is written, ``weights`` (the value of the setting ``key``)
    that are neither one of ``keywords`` nor an existing checkpoint file."""
    if weights is None or weights in keywords:
        return
    path = Path(resolve_path(weights))
    if path.is_dir():
        raise ConfigError(f"{key}={weights} is a directory, not a checkpoint: give the checkpoint file itself")
    if not path.is_file():
        raise ConfigError(
            f"{key}={weights}: no such file; give a checkpoint file (any layout the distillation "
            f"teachers accept) or {' or '.join(map(repr, keywords))}"
        )


def load_backbone(
    weights: str | None,
    arch: str | None = None,
    layout: str = "auto",
    allow_unsafe_pickle: bool = False,
    seed: int = 0,
    unsafe_option: str | None = None,
) -> tuple[nn.Module, str]:
    """Backbone (images -> pooled features) in eval mode, and its architecture name.

    ``weights`` None or ``"random"`` gives a random initialisation seeded by ``seed``
    (``arch`` required); ``"pixels"`` gives the raw-pixel baseline (arch ``"pixels"``);
    otherwise ``arch=None`` uses the architecture the file records. ``unsafe_option``: the tool's
    way to set ``allow_unsafe_pickle`` (e.g. ``"model.allow_unsafe_pickle=true"``), named when the
    safe unpickler refuses the file.
    """
    if is_pixels(weights):
        return pixel_features().eval(), PIXELS
    if is_random(weights):
        if not arch:
            raise ValueError("a random-init model needs model.arch (e.g. model.arch=resnet18)")
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            backbone, _ = build_backbone(arch)
    else:
        backbone, _, parsed = load_pretrained(
            resolve_path(weights), arch, layout, allow_unsafe_pickle, use_head=False, unsafe_option=unsafe_option
        )
        arch = arch or parsed.meta["arch"]
    return backbone.eval().requires_grad_(False), arch


def checkpoint_fingerprint(weights: str | None, arch: str | None, seed: int = 0) -> str:
    """Content hash of a checkpoint file (or of the random-init recipe), for cache keys."""
    if is_pixels(weights):
        return f"pixels:{PIXEL_GRID}"
    if is_random(weights):
        return f"random:{arch}:{seed}"
    digest = hashlib.sha256()
    with Path(resolve_path(weights)).open("rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            digest.update(block)
    return f"sha256:{digest.hexdigest()}"

"""Any ResNet checkpoint -> the weights file MMSegmentation's ``ResNet`` backbone loads.

MMSegmentation's ``ResNet`` (``style='pytorch'``, plain 7x7 stem, ``deep_stem=False``) names
its parameters exactly as torchvision does (``conv1``, ``bn1``, ``layerN.i.convK``,
``layerN.i.bnK``, ``layerN.i.downsample.{0,1}``), so the conversion keeps those keys and drops
everything else (``fc.*``, projection heads, ...), reporting each dropped key by name. The
file is ``{"state_dict": {...}, "meta": {...}}`` of tensors and strings, which MMEngine's
``Pretrained`` initialiser reads with ``torch.load(weights_only=True)``.

Its dilated variant (strides 1,2,1,1, dilations 1,1,2,4, output stride 8) has the same
parameters: dilation changes no weight shape.
"""

import re

import torch

from distill.checkpoints import CheckpointError, load_pretrained
from seed_core.atomic import atomic_save
from seed_transfer.backbones import FLAG_UNSAFE_OPTION
from seed_transfer.detection.convert import infer_depth

_BACKBONE_KEY = re.compile(
    r"(conv1\.weight|bn1\.\w+|layer[1-4]\.\d+\.(conv[1-3]\.weight|bn[1-3]\.\w+|"
    r"downsample\.[01]\.\w+))"
)


def convert_to_mmseg(state: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], list[str], int]:
    """(converted state dict, skipped source keys, depth) for torchvision-named ResNet weights.
    Raises ValueError, naming what was found, for a backbone mmseg's plain-stem ResNet cannot
    hold (deep stem, ResNet-D shortcuts, MobileNet, ViT, ...)."""
    depth = infer_depth(
        state,
        advice="Segmentation transfer uses mmseg's ResNet with a plain 7x7 stem "
        "(style='pytorch'): ResNet-18/34/50/101/152 weights with torchvision key names only.",
    )
    converted = {k: v.detach().cpu().clone() for k, v in state.items() if _BACKBONE_KEY.fullmatch(k)}
    skipped = [k for k in state if k not in converted]
    return converted, skipped, depth


def check_mmseg_keys(converted: dict[str, torch.Tensor], depth: int) -> None:
    """Build mmseg's ``ResNet(depth)`` and refuse any missing, unexpected or mis-shaped key (by
    name). Needs the [seg] extra; wide ResNets / ResNeXt fail here with their shapes."""
    from .mmseg_setup import import_mmseg

    import_mmseg()
    from mmseg.models.backbones import ResNet

    expected = ResNet(depth=depth, style="pytorch").state_dict()
    missing = [k for k in expected if k not in converted and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in converted if k not in expected]
    mismatched = [
        f"{k}: {tuple(v.shape)} vs mmseg {tuple(expected[k].shape)}"
        for k, v in converted.items()
        if k in expected and v.shape != expected[k].shape
    ]
    if missing or unexpected or mismatched:
        raise ValueError(
            f"converted weights do not fit mmseg ResNet-{depth}: missing {missing[:10]}, "
            f"unexpected {unexpected[:10]}, shape mismatches {mismatched[:10]}"
        )


def convert_checkpoint(
    path, out_path, arch: str | None = None, layout: str = "auto", allow_unsafe_pickle: bool = False, check: bool = True
) -> dict:
    """Read any checkpoint :func:`distill.checkpoints.load_pretrained` reads (SEED student export,
    MoCo v1/v2/v3, SwAV, SimCLR, DINO, torchvision, timm ResNets), write its backbone for mmseg's
    ``ResNet`` to ``out_path`` (atomically), and return ``{"arch", "depth", "layout",
    "converted": n, "skipped": [keys], "dropped": [what the loader left out]}``."""
    backbone, _, parsed = load_pretrained(
        path, arch, layout, allow_unsafe_pickle, use_head=False, unsafe_option=FLAG_UNSAFE_OPTION
    )
    arch = arch or parsed.meta["arch"]
    try:
        converted, skipped, depth = convert_to_mmseg(backbone.state_dict())
        if check:
            check_mmseg_keys(converted, depth)
    except ValueError as err:
        raise CheckpointError(f"{path} (arch {arch}, layout {parsed.layout}): {err}") from None
    meta = {"arch": arch, "depth": depth, "source": str(path), "layout": parsed.layout}
    atomic_save({"state_dict": converted, "meta": meta}, out_path)
    return {
        "arch": arch,
        "depth": depth,
        "layout": parsed.layout,
        "converted": len(converted),
        "skipped": skipped,
        "dropped": [str(d) for d in parsed.meta.get("dropped", [])],
    }

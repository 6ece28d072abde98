"""torchvision-named ResNet backbone weights -> a Detectron2 ``.pkl`` (MoCo's conversion layout).

Names, as in MoCo's ``detection/convert-pretrain-to-detectron2.py`` and Detectron2's
``tools/convert-torchvision-to-d2.py``::

    conv1.weight                       -> stem.conv1.weight
    bn1.{weight,bias,running_*}        -> stem.conv1.norm.*
    layerN.i.convK.weight              -> res{N+1}.i.convK.weight
    layerN.i.bnK.*                     -> res{N+1}.i.convK.norm.*
    layerN.i.downsample.0.weight       -> res{N+1}.i.shortcut.weight
    layerN.i.downsample.1.*            -> res{N+1}.i.shortcut.norm.*

BN ``num_batches_tracked`` is dropped silently; every other key that is not part of such a
backbone (``fc.*``, a projector, ...) is skipped and returned by name for the caller to report.
The file is loaded by ``DetectionCheckpointer`` with ``matching_heuristics``, which matches the
names as suffixes (``res5.*`` lands in ``roi_heads.res5.*`` of a C4 model, ``res2.*`` in
``backbone.bottom_up.res2.*`` of an FPN model).

The weights need these Detectron2 settings (torchvision preprocessing, in 0-255 units)::

    INPUT.FORMAT: "RGB"
    MODEL.PIXEL_MEAN: [123.675, 116.280, 103.530]
    MODEL.PIXEL_STD: [58.395, 57.120, 57.375]
    MODEL.RESNETS.STRIDE_IN_1X1: False        # torchvision strides in the 3x3 conv
    MODEL.RESNETS.DEPTH: 18 | 34 | 50 | 101 | 152
    MODEL.RESNETS.RES2_OUT_CHANNELS: 64       # R18/R34 only (BasicBlock); 256 otherwise
    MODEL.RESNETS.NUM_GROUPS / WIDTH_PER_GROUP  # ResNeXt / wide ResNets (see detectron2_settings)

A ``.pkl`` given instead of a checkpoint is checked by :func:`read_detectron2_pkl` (a restricted
unpickler: arrays, numbers and strings) and copied with :func:`copy_detectron2_pkl`; Detectron2,
which unpickles ``.pkl`` files without restriction, only ever reads a file written here.

R18/R34 in a C4 model also need a res5 head built from BasicBlocks
(``MODEL.ROI_HEADS.NAME: "Res5ROIHeadsAnyDepth"`` or ``"Res5ROIHeadsExtraNorm"``,
:mod:`seed_transfer.detection.d2.heads`): Detectron2's ``Res5ROIHeads`` is bottleneck-only.
"""

import pickle
import re
from pathlib import Path

import numpy as np
import torch

from distill.checkpoints import CheckpointError, load_pretrained
from seed_core import safe_pickle
from seed_core.atomic import atomic_save
from seed_core.errors import MissingFile
from seed_transfer.backbones import FLAG_UNSAFE_OPTION

# Blocks per stage (layer1..layer4) -> depth, for BasicBlock and Bottleneck ResNets.
_BASIC_DEPTHS = {(2, 2, 2, 2): 18, (3, 4, 6, 3): 34}
_BOTTLENECK_DEPTHS = {(3, 4, 6, 3): 50, (3, 4, 23, 3): 101, (3, 8, 36, 3): 152}
SUPPORTED_DEPTHS = (18, 34, 50, 101, 152)

_BN = r"(?P<param>weight|bias|running_mean|running_var)"
_RULES = [  # (torchvision pattern, Detectron2 name template)
    (re.compile(r"conv1\.weight"), "stem.conv1.weight"),
    (re.compile(rf"bn1\.{_BN}"), "stem.conv1.norm.{param}"),
    (re.compile(r"layer(?P<n>[1-4])\.(?P<i>\d+)\.conv(?P<k>[1-3])\.weight"), "res{stage}.{i}.conv{k}.weight"),
    (re.compile(rf"layer(?P<n>[1-4])\.(?P<i>\d+)\.bn(?P<k>[1-3])\.{_BN}"), "res{stage}.{i}.conv{k}.norm.{param}"),
    (re.compile(r"layer(?P<n>[1-4])\.(?P<i>\d+)\.downsample\.0\.weight"), "res{stage}.{i}.shortcut.weight"),
    (re.compile(rf"layer(?P<n>[1-4])\.(?P<i>\d+)\.downsample\.1\.{_BN}"), "res{stage}.{i}.shortcut.norm.{param}"),
]


def _d2_name(key: str) -> str | None:
    """The Detectron2 name of a torchvision ResNet key, or None if it is not a backbone key."""
    for pattern, template in _RULES:
        found = pattern.fullmatch(key)
        if found:
            groups = found.groupdict()
            stage = int(groups["n"]) + 1 if "n" in groups else None
            return template.format(stage=stage, **groups)
    return None


D2_ADVICE = (
    "Detectron2 transfer supports ResNets only (its ResNet has a 7x7 stem, BasicBlock or "
    "Bottleneck stages and conv shortcuts); use the torchvision detection engine for other backbones."
)


def _not_a_resnet(state: dict, reason: str, advice: str) -> ValueError:
    keys = ", ".join(list(state)[:6]) + (", ..." if len(state) > 6 else "")
    return ValueError(
        f"not a torchvision-named ResNet-18/34/50/101/152 backbone ({reason}; found keys {keys}). " + advice
    )


def infer_depth(state: dict[str, torch.Tensor], advice: str = D2_ADVICE) -> int:
    """ResNet depth from torchvision key names: blocks per stage and whether blocks have a conv3.
    Raises ValueError (naming what was found, then ``advice``) for anything a plain-stem
    ResNet (Detectron2's, mmseg's) cannot hold."""
    if "conv1.weight" not in state:
        deep_stem = any(k.startswith("conv1.") for k in state)
        raise _not_a_resnet(state, "a deep stem (ResNet-C/D)" if deep_stem else "no conv1.weight stem", advice)
    stem = state["conv1.weight"]
    if stem.dim() != 4 or tuple(stem.shape[1:]) != (3, 7, 7):
        raise _not_a_resnet(state, f"conv1.weight has shape {tuple(stem.shape)}, not (C, 3, 7, 7)", advice)
    if any(re.search(r"\.downsample\.[2-9]\.", k) for k in state):
        raise _not_a_resnet(state, "average-pool shortcuts (ResNet-D: downsample.2)", advice)
    blocks = tuple(len({k.split(".")[1] for k in state if k.startswith(f"layer{n}.")}) for n in range(1, 5))
    bottleneck = "layer1.0.conv3.weight" in state
    depth = (_BOTTLENECK_DEPTHS if bottleneck else _BASIC_DEPTHS).get(blocks)
    if depth is None:
        kind = "Bottleneck" if bottleneck else "BasicBlock"
        raise _not_a_resnet(state, f"{kind} stages with {list(blocks)} blocks", advice)
    return depth


def detectron2_settings(state: dict[str, torch.Tensor], depth: int | None = None) -> dict[str, object]:
    """The ``MODEL.*``/``INPUT.*`` config values these torchvision-named ResNet weights need.

    Groups and width come from ``layer1.0.conv2`` (bottleneck width C x C/groups x 3 x 3):
    1 x 64 for ResNet-50, 32 x 4 for ResNeXt-50 32x4d, 1 x 128 for Wide ResNet-50-2."""
    depth = depth or infer_depth(state)
    settings: dict[str, object] = {
        "INPUT.FORMAT": "RGB",
        "MODEL.PIXEL_MEAN": [123.675, 116.280, 103.530],
        "MODEL.PIXEL_STD": [58.395, 57.120, 57.375],
        "MODEL.RESNETS.DEPTH": depth,
        "MODEL.RESNETS.STRIDE_IN_1X1": False,
        "MODEL.RESNETS.RES2_OUT_CHANNELS": 64 if depth in (18, 34) else 256,
    }
    if depth not in (18, 34):
        width, per_group = state["layer1.0.conv2.weight"].shape[:2]  # out, in / groups
        groups = width // per_group
        settings["MODEL.RESNETS.NUM_GROUPS"] = int(groups)
        settings["MODEL.RESNETS.WIDTH_PER_GROUP"] = int(width // groups)
    return settings


def convert_to_detectron2(
    state: dict[str, torch.Tensor], depth: int | None = None
) -> tuple[dict[str, np.ndarray], list[str]]:
    """Rename a torchvision-named ResNet state dict to Detectron2's ResNet names.

    Returns (converted, skipped): ``converted`` maps Detectron2 names to numpy arrays (source
    order, dtype kept); ``skipped`` lists the source keys that are not part of the backbone
    (``fc.*``, heads, ...), for the caller to report. ``depth`` is inferred from the keys when
    None, and must agree with them when given. A state dict that is not a supported ResNet
    (MobileNet, ViT, deep-stem ResNet-D, ...) raises ValueError naming what was found.
    """
    inferred = infer_depth(state)
    if depth is not None and depth != inferred:
        raise CheckpointError(
            f"depth={depth} was given, but the weights are a ResNet-{inferred} "
            f"(blocks per stage and block type); Detectron2 would skip or misplace layers"
        )
    converted: dict[str, np.ndarray] = {}
    skipped: list[str] = []
    for key, value in state.items():
        if key.endswith("num_batches_tracked"):
            continue
        name = _d2_name(key)
        if name is None:
            skipped.append(key)
            continue
        is_conv = name.endswith("weight") and ".norm." not in name
        if value.dim() != (4 if is_conv else 1):
            raise _not_a_resnet(
                state,
                f"{key} has shape {tuple(value.shape)}, expected a {'4-D conv' if is_conv else '1-D BatchNorm'} tensor",
                D2_ADVICE,
            )
        converted[name] = value.detach().cpu().numpy()
    return converted, skipped


def write_detectron2_pkl(converted: dict, path, meta: dict | None = None) -> None:
    """Pickle ``{"model": converted, "__author__": "seed-transfer", "matching_heuristics": True,
    **meta}`` as MoCo's converter does; DetectionCheckpointer reads it as a model-zoo file and
    matches the names by suffix. Tensors are stored as numpy arrays. Written atomically."""
    model = {
        k: v.detach().cpu().numpy() if isinstance(v, torch.Tensor) else np.asarray(v) for k, v in converted.items()
    }
    obj = {"model": model, "__author__": "seed-transfer", "matching_heuristics": True, **(meta or {})}
    atomic_save(obj, path, dump=pickle.dump)


def read_detectron2_pkl(path) -> dict:
    """A Detectron2 ``.pkl`` (MoCo's conversion layout and Detectron2's model zoo: ``{"model": {name:
    array}, "__author__", ...}``; Caffe2's ``{"blobs": {name: array}}`` or a bare ``{name: array}``),
    read as ``DetectionCheckpointer`` reads it (``encoding="latin1"``) but through the restricted
    unpickler of :mod:`seed_core.safe_pickle`: a file naming any other callable is refused, and
    nothing in it runs. Every weight must be a numpy array, as the checkpointer requires (Caffe2's
    ``*_momentum`` entries aside, which it drops). Errors are one line naming the file."""
    path = Path(path)
    if path.is_dir():
        raise CheckpointError(f"{path} is a directory, not a Detectron2 weights file: give the .pkl file itself")
    if not path.is_file():
        raise MissingFile(f"Detectron2 weights file not found: {path}")
    try:
        obj = safe_pickle.load(path, "a weights file", encoding="latin1")
    except safe_pickle.RefusedPickle:
        raise
    # what pickle.load raises for a file cut short or not a pickle at all
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, IndexError, KeyError, AttributeError) as e:
        reason = " ".join(str(e).split()) or type(e).__name__
        raise CheckpointError(f"{path} is truncated or not a pickle ({reason}): copy or convert it again") from None
    if not isinstance(obj, dict):
        raise CheckpointError(f"{path} is not a Detectron2 weights file (it holds a {type(obj).__name__}, not a dict)")
    zoo, weights = _layout(obj)
    if not isinstance(weights, dict) or not weights:
        raise CheckpointError(
            f"{path} is not a Detectron2 weights file (no name -> array mapping; top-level keys {list(obj)[:6]})"
        )
    for name, value in weights.items():
        if not isinstance(value, np.ndarray) and (zoo or not str(name).endswith("_momentum")):
            raise CheckpointError(
                f"{path}: weight {name!r} is a {type(value).__name__}, not a numpy array "
                "(a Detectron2 weights file maps names to numpy arrays)"
            )
    return obj


def _layout(obj: dict) -> tuple[bool, object]:
    """(whether ``obj`` is in the model-zoo layout, its name -> array mapping), told apart as
    ``DetectionCheckpointer`` does: ``model`` and ``__author__``, else Caffe2's ``blobs`` or the dict itself."""
    zoo = "model" in obj and "__author__" in obj
    return zoo, obj["model"] if zoo else obj.get("blobs", obj)


def copy_detectron2_pkl(path, out_path) -> int:
    """Check ``path`` with :func:`read_detectron2_pkl` and write what it holds to ``out_path``
    (atomically). Detectron2's checkpointer unpickles a ``.pkl`` with a plain ``pickle.load``, so it
    is given this copy, made of checked arrays and strings, never the file itself (which could
    also change between the check and the load). Returns the number of weights."""
    obj = read_detectron2_pkl(path)
    atomic_save(obj, out_path, dump=pickle.dump)
    return len(_layout(obj)[1])


def convert_checkpoint(
    path, out_path, arch: str | None = None, layout: str = "auto", allow_unsafe_pickle: bool = False
) -> dict:
    """Read any checkpoint :func:`distill.checkpoints.load_pretrained` reads (our student export,
    MoCo v1/v2/v3, SwAV, SimCLR, DINO, torchvision, timm ResNets) and write its backbone as a
    Detectron2 ``.pkl``. ``arch=None`` takes the arch recorded in the file.

    Returns ``{"arch", "depth", "layout", "converted": n, "skipped": [keys], "dropped": [what the
    loader left out: projection head, classifier, ...], "settings": detectron2_settings}``.
    """
    backbone, _, parsed = load_pretrained(
        path, arch, layout, allow_unsafe_pickle, use_head=False, unsafe_option=FLAG_UNSAFE_OPTION
    )
    arch = arch or parsed.meta["arch"]
    state = backbone.state_dict()
    try:
        converted, skipped = convert_to_detectron2(state)
    except ValueError as e:
        raise CheckpointError(f"{path} (arch {arch}, layout {parsed.layout}): {e}") from None
    depth = infer_depth(state)
    write_detectron2_pkl(converted, out_path, {"arch": arch, "source": str(path), "layout": parsed.layout})
    return {
        "arch": arch,
        "depth": depth,
        "layout": parsed.layout,
        "converted": len(converted),
        "skipped": skipped,
        "dropped": [str(d) for d in parsed.meta.get("dropped", [])],
        "settings": detectron2_settings(state, depth),
    }

"""Backbones by name: torchvision classification models, timm models, or registered builders.

Every backbone maps an image batch N x 3 x H x W to pooled features N x D: the
network with its final classification layer replaced by ``nn.Identity``. Key
names stay those of the source library (a torchvision ResNet-18 backbone has the
keys of ``torchvision.models.resnet18()`` without ``fc.*``), so exported students
load anywhere torchvision weights load.
"""

import difflib
from collections.abc import Callable

import torch.nn as nn
import torchvision

from seed_core.config import ConfigError

from .vit import ARCHS as VIT_ARCHS
from .vit import build_vit, is_vit_arch

BackboneBuilder = Callable[[], tuple[nn.Module, int]]
_REGISTRY: dict[str, BackboneBuilder] = {}

TIMM_PREFIX = "timm:"


def register_backbone(name: str) -> Callable[[BackboneBuilder], BackboneBuilder]:
    """Register ``builder() -> (module, feature_dim)`` under ``name`` (e.g. a custom student)."""

    def wrap(builder: BackboneBuilder) -> BackboneBuilder:
        _REGISTRY[name] = builder
        return builder

    return wrap


def _strip_classifier(model: nn.Module) -> int:
    """Replace the last ``nn.Linear`` of ``model`` by ``nn.Identity``; return its input size.

    For ResNets that is ``fc``; for MobileNetV3 ``classifier.3`` (the 960 -> 1280
    hidden layer stays, as in timm's ``num_classes=0``); for EfficientNet and
    MobileNetV2 ``classifier.1``.
    """
    last_name, last = None, None
    for name, module in model.named_modules():
        if isinstance(module, nn.Linear):
            last_name, last = name, module
    if last is None:
        raise ValueError(f"{type(model).__name__} has no nn.Linear classifier to remove")
    parent = model.get_submodule(last_name.rpartition(".")[0]) if "." in last_name else model
    setattr(parent, last_name.rpartition(".")[2], nn.Identity())
    return last.in_features


def available_archs() -> list[str]:
    return sorted(_REGISTRY) + sorted(VIT_ARCHS) + torchvision.models.list_models(module=torchvision.models)


def check_arch(arch: str, key: str = "arch") -> None:
    """Raise a :class:`ConfigError` naming ``key`` and the closest valid names when ``arch``
    names no backbone; cheap (no model is built), so configs are checked before anything loads."""
    if arch.startswith(TIMM_PREFIX):
        import timm  # optional at import time: only timm students need it

        name = arch[len(TIMM_PREFIX) :]
        if not timm.is_model(name):
            close = difflib.get_close_matches(name, timm.list_models(), n=3)
            raise ConfigError(
                f"{key}={arch}: timm has no model {name!r}"
                + (f"; close matches: {', '.join(TIMM_PREFIX + c for c in close)}" if close else "")
                + " (timm.list_models() lists them)"
            )
    elif arch not in available_archs():
        close = difflib.get_close_matches(arch, available_archs(), n=3)
        raise ConfigError(
            f"{key}={arch}: unknown architecture"
            + (f"; close matches: {', '.join(close)}" if close else "")
            + " (a torchvision classification model, see torchvision.models.list_models(), "
            "a DINOv2/DINOv3 ViT by its torch.hub name such as dinov2_vits14 or dinov3_vitb16, "
            "or timm:<name> for a timm model)"
        )


def _timm_backbone(name: str) -> nn.Module:
    """timm's ``name`` without its classifier. Vision transformers (timm's ViT, DeiT, EVA, ...) are
    built with ``dynamic_img_size=True``: any input whose sides are multiples of the patch size runs,
    the position embeddings interpolated to the patch grid (a ViT-Tiny/16 student at the demo's 64 px
    sees 4 x 4 patches); the parameters, and so the files, are those of the fixed-size model."""
    import timm  # optional at import time: only timm backbones need it

    try:
        return timm.create_model(name, pretrained=False, num_classes=0, dynamic_img_size=True)
    except TypeError as err:  # a model family without token grids (ResNets, ConvNeXts, ...)
        if "dynamic_img_size" not in str(err):
            raise
    return timm.create_model(name, pretrained=False, num_classes=0)


def build_backbone(arch: str) -> tuple[nn.Module, int]:
    """Build a randomly initialised backbone; returns (module, pooled feature dim).

    ``arch`` is a registered name, a torchvision classification model name
    (``resnet18``, ``mobilenet_v3_large``, ``efficientnet_b0``, ``resnet50``, ...),
    a DINOv2/DINOv3 ViT by the authors' torch.hub name (``dinov2_vits14``, ``dinov2_vitb14_reg``,
    ``dinov3_vits16``, ...) or ``timm:<name>`` for any timm model (``timm:resnet18``,
    ``timm:convnext_tiny``; ViT students such as ``timm:vit_tiny_patch16_224`` take any input size).
    DINOv2/DINOv3 ViTs, timm's included (``timm:vit_small_patch14_dinov2``), are :class:`distill.vit.DinoViT`:
    any input size, the authors' position handling, class-token output.
    """
    check_arch(arch)
    if arch in _REGISTRY:
        return _REGISTRY[arch]()
    if is_vit_arch(arch):
        model = build_vit(arch)
        return model, model.feature_dim
    if arch.startswith(TIMM_PREFIX):
        model = _timm_backbone(arch[len(TIMM_PREFIX) :])
        # timm >= 1.0: num_features is the last feature map's width; models with a
        # pre-logits layer (MobileNetV3's conv_head) output head_hidden_size instead.
        return model, getattr(model, "head_hidden_size", None) or model.num_features
    model = torchvision.models.get_model(arch, weights=None)
    return model, _strip_classifier(model)

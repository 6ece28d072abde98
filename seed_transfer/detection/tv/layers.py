"""Small layers that make torchvision's detection pieces compute what Detectron2 computes.

- :func:`norm_layer` / :func:`convert_norm`: Detectron2's ``NORM`` names ("", BN, SyncBN,
  naiveSyncBN, FrozenBN, GN) as layer factories, and in-place conversion of a pretrained
  network's BN; :class:`NaiveSyncBatchNorm` is Detectron2's ``naiveSyncBN``.
- :class:`D2AnchorGenerator`: torchvision's generator rounds the base anchors to integers;
  Detectron2's ``DefaultAnchorGenerator`` does not.
- :class:`RoIPooler`: Detectron2's ``ROIPooler`` (level = floor(4 + log2(sqrt(area) / 224)),
  ``ROIAlignV2`` = RoIAlign with ``aligned=True``). torchvision's ``MultiScaleRoIAlign``
  always uses ``aligned=False`` and infers the strides from the feature sizes.
- :func:`c2_xavier_fill` / :func:`c2_msra_fill`: Detectron2's (Caffe2's) initialisations.
"""

import math
from functools import partial

import torch
import torch.distributed as dist
from torch import nn
from torch.distributed.nn.functional import all_reduce
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.ops import FrozenBatchNorm2d, roi_align

from seed_core.config import ConfigError

NORMS = ("", "BN", "SyncBN", "naiveSyncBN", "FrozenBN", "GN")


class NaiveSyncBatchNorm(nn.BatchNorm2d):
    """Detectron2's ``naiveSyncBN`` (``detectron2.layers.NaiveSyncBatchNorm``, ``stats_mode=""``),
    the norm of MoCo's detection configs.

    Training under several processes, the per-process mean and mean of squares over (N, H, W)
    are averaged over the processes by a differentiable all-reduce (so every process must
    hold the same batch size), var = E[x^2] - E[x]^2, and the running statistics move by
    ``momentum`` towards them; fp16 input is reduced in fp32. In one process or in eval mode
    it is ``BatchNorm2d``. Input (N, C, H, W).
    """

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        world = dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1
        if world == 1 or not self.training:
            return super().forward(input)
        x = input.float() if input.dtype == torch.float16 else input
        channels = x.shape[1]
        stats = torch.cat([x.mean(dim=(0, 2, 3)), (x * x).mean(dim=(0, 2, 3))])  # (2C,)
        mean, meansqr = (all_reduce(stats) / world).split(channels)
        var = meansqr - mean * mean
        scale = self.weight * torch.rsqrt(var + self.eps)  # (C,)
        bias = self.bias - mean * scale
        self.running_mean += self.momentum * (mean.detach() - self.running_mean)
        self.running_var += self.momentum * (var.detach() - self.running_var)
        out = x * scale.reshape(1, -1, 1, 1) + bias.reshape(1, -1, 1, 1)
        return out.to(input.dtype)


def norm_layer(name: str):
    """A ``norm(num_channels)`` factory for a Detectron2 ``NORM`` value, or None for ""."""
    if name not in NORMS:
        raise ConfigError(f"unsupported NORM {name!r}; the torchvision engine knows {NORMS}")
    return {
        "": None,
        "BN": nn.BatchNorm2d,
        "SyncBN": nn.SyncBatchNorm,
        "naiveSyncBN": NaiveSyncBatchNorm,
        "FrozenBN": FrozenBatchNorm2d,
        "GN": partial(nn.GroupNorm, 32),
    }[name]


def _naive_sync(bn: nn.BatchNorm2d) -> NaiveSyncBatchNorm:
    synced = NaiveSyncBatchNorm(bn.num_features, bn.eps, bn.momentum, bn.affine, bn.track_running_stats)
    synced.load_state_dict(bn.state_dict())
    return synced.train(bn.training)


def _frozen(bn: nn.BatchNorm2d) -> FrozenBatchNorm2d:
    frozen = FrozenBatchNorm2d(bn.num_features, eps=bn.eps)
    if bn.affine:
        frozen.weight.copy_(bn.weight.detach())
        frozen.bias.copy_(bn.bias.detach())
    if bn.track_running_stats:
        frozen.running_mean.copy_(bn.running_mean)
        frozen.running_var.copy_(bn.running_var)
    return frozen


@torch.no_grad()
def convert_norm(module: nn.Module, name: str) -> nn.Module:
    """The BatchNorm2d layers of a pretrained ``module`` as Detectron2's ``NORM`` ``name``: kept
    ("BN"), frozen with their statistics ("FrozenBN"), or synchronised ("SyncBN", "naiveSyncBN").
    Returns the (possibly new) module; buffers and parameters keep their names and values."""
    if name == "BN":
        return module
    if name == "SyncBN":
        return nn.SyncBatchNorm.convert_sync_batchnorm(module)
    convert = {"FrozenBN": _frozen, "naiveSyncBN": _naive_sync}.get(name)
    if convert is None:
        raise ConfigError(
            f"the backbone NORM must be BN, SyncBN, naiveSyncBN or FrozenBN for pretrained weights, got {name!r}"
        )
    if type(module) is nn.BatchNorm2d:  # exactly: a NaiveSyncBatchNorm is one too
        return convert(module)
    for child_name, child in module.named_children():
        new = convert_norm(child, name)
        if new is not child:
            setattr(module, child_name, new)
    return module


def c2_xavier_fill(module: nn.Module) -> None:
    """Detectron2's ``c2_xavier_fill``: kaiming-uniform (a=1) weights, zero bias."""
    nn.init.kaiming_uniform_(module.weight, a=1)
    if module.bias is not None:
        nn.init.zeros_(module.bias)


def c2_msra_fill(module: nn.Module) -> None:
    """Detectron2's ``c2_msra_fill``: kaiming-normal (fan_out, relu) weights, zero bias."""
    nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
    if module.bias is not None:
        nn.init.zeros_(module.bias)


class D2AnchorGenerator(AnchorGenerator):
    """torchvision's grid of anchors with Detectron2's unrounded cell anchors (area size^2,
    height/width = aspect ratio, centred on (0, 0): OFFSET 0)."""

    def generate_anchors(self, scales, aspect_ratios, dtype=torch.float32, device=torch.device("cpu")):
        scales = torch.as_tensor(scales, dtype=dtype, device=device)
        ratios = torch.as_tensor(aspect_ratios, dtype=dtype, device=device)
        widths = (scales[None, :] / torch.sqrt(ratios)[:, None]).reshape(-1)
        heights = (scales[None, :] * torch.sqrt(ratios)[:, None]).reshape(-1)
        return torch.stack([-widths, -heights, widths, heights], dim=1) / 2


class RoIPooler(nn.Module):
    """Detectron2's ``ROIPooler`` over named feature maps of known strides.

    forward(features: {name: (N, C, H, W)}, boxes: list of (R_i, 4) XYXY in input pixels,
    image_shapes: unused, kept for torchvision's interface) -> (sum R_i, C, S, S).
    """

    def __init__(
        self,
        featmap_names: list[str],
        strides: list[int],
        output_size: int,
        sampling_ratio: int = 0,
        aligned: bool = True,
        canonical_box_size: int = 224,
        canonical_level: int = 4,
    ):
        super().__init__()
        self.featmap_names, self.strides = list(featmap_names), list(strides)
        self.output_size, self.sampling_ratio, self.aligned = output_size, sampling_ratio, aligned
        self.min_level, self.max_level = int(math.log2(strides[0])), int(math.log2(strides[-1]))
        if [2**level for level in range(self.min_level, self.max_level + 1)] != self.strides:
            raise ConfigError(f"pooler strides must be consecutive powers of 2, got {strides}")
        self.canonical_box_size, self.canonical_level = canonical_box_size, canonical_level

    def forward(self, features: dict, boxes: list[torch.Tensor], image_shapes=None) -> torch.Tensor:
        maps = [features[name] for name in self.featmap_names]
        rois = torch.cat([torch.cat([torch.full_like(b[:, :1], i), b], dim=1) for i, b in enumerate(boxes)])
        if len(maps) == 1:
            return roi_align(maps[0], rois, self.output_size, 1.0 / self.strides[0], self.sampling_ratio, self.aligned)
        sizes = torch.sqrt((rois[:, 3] - rois[:, 1]) * (rois[:, 4] - rois[:, 2]))
        levels = torch.floor(self.canonical_level + torch.log2(sizes / self.canonical_box_size + 1e-8))
        levels = levels.clamp(self.min_level, self.max_level).long() - self.min_level
        out = maps[0].new_zeros((rois.shape[0], maps[0].shape[1], self.output_size, self.output_size))
        for level, (feature, stride) in enumerate(zip(maps, self.strides)):
            index = torch.nonzero(levels == level).squeeze(1)
            out[index] = roi_align(
                feature, rois[index], self.output_size, 1.0 / stride, self.sampling_ratio, self.aligned
            ).to(out.dtype)
        return out

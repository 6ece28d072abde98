"""The frozen teacher: pretrained backbone (+ its projection head), always in eval mode, fed
the input normalisation it was trained with."""

import torch
import torch.nn as nn
import torch.nn.functional as F

from .data import IMAGENET, UNIT_RANGE, Normalization

NAMED_NORMS = {"imagenet": IMAGENET, "none": UNIT_RANGE}
# What the published checkpoints of a layout take as input, where it is not ImageNet mean/std:
# SimCLR's TensorFlow models (and tonylins/simclr-converter's PyTorch copies) take [0, 1] pixels.
LAYOUT_INPUT_NORMS = {"simclr": "none"}


def resolve_input_norm(setting: str | list[float], layout: str | None) -> tuple[Normalization, str]:
    """The teacher's input normalisation for ``teacher.input_norm=setting`` and a checkpoint of
    ``layout`` (None: unknown, e.g. a teacher built in memory), and where it comes from."""
    if not isinstance(setting, str):
        return Normalization(tuple(setting[:3]), tuple(setting[3:])), "teacher.input_norm"
    if setting != "auto":
        return NAMED_NORMS[setting], f"teacher.input_norm={setting}"
    if layout is None:
        return IMAGENET, "teacher.input_norm=auto, layout unknown"
    return NAMED_NORMS[LAYOUT_INPUT_NORMS.get(layout, "imagenet")], f"{layout} layout"


def describe_norm(norm: Normalization) -> str:
    if norm == UNIT_RANGE:
        return "[0, 1] pixels (no normalisation)"
    if norm == IMAGENET:
        return "ImageNet mean/std"
    return f"mean {list(norm.mean)}, std {list(norm.std)}"


class FrozenTeacher(nn.Module):
    """Maps N x 3 x H x W images to N x C L2-normalised embeddings, without gradients.

    ``head`` is the checkpoint's projection head (MoCo/SwAV/SimCLR) or ``None``, in
    which case the pooled backbone features are the embedding. ``input_size``
    resizes the student's view for a teacher that wants another resolution.
    The views arrive normalised with ``view_norm`` (the student's); a teacher trained on
    another ``input_norm`` gets them re-normalised, exactly: x * std_v / std_t + (mean_v - mean_t) / std_t.
    """

    def __init__(
        self,
        backbone: nn.Module,
        head: nn.Module | None = None,
        input_size: int | None = None,
        input_norm: Normalization = IMAGENET,
        view_norm: Normalization = IMAGENET,
    ):
        super().__init__()
        self.backbone = backbone
        self.head = head if head is not None else nn.Identity()
        self.input_size = input_size
        self.input_norm = Normalization(*input_norm)
        self.renormalise = self.input_norm != Normalization(*view_norm)
        if self.renormalise:
            view_mean, view_std, mean, std = (torch.tensor(v).view(1, 3, 1, 1) for v in (*view_norm, *input_norm))
            # not in the state dict: they follow from the config, not from the training
            self.register_buffer("input_scale", view_std / std, persistent=False)
            self.register_buffer("input_shift", (view_mean - mean) / std, persistent=False)
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> "FrozenTeacher":
        # The teacher's BN statistics must never change: ignore model.train().
        return super().train(False)

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if self.renormalise:
            images = images * self.input_scale + self.input_shift
        if self.input_size is not None and images.shape[-1] != self.input_size:
            images = F.interpolate(images, size=self.input_size, mode="bilinear", align_corners=False, antialias=True)
        return F.normalize(self.head(self.backbone(images)).float(), dim=1)

    @torch.no_grad()
    def embed_dim(self, image_size: int = 64) -> int:
        """Embedding size C, found with one forward pass on a dummy batch."""
        param = next(self.parameters())
        return self(torch.zeros(2, 3, image_size, image_size, device=param.device, dtype=param.dtype)).shape[1]

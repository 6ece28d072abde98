"""The frozen teacher: pretrained backbone (+ its projection head), always in eval mode."""

import torch
import torch.nn as nn
import torch.nn.functional as F


class FrozenTeacher(nn.Module):
    """Maps N x 3 x H x W images to N x C L2-normalised embeddings, without gradients.

    ``head`` is the checkpoint's projection head (MoCo/SwAV/SimCLR) or ``None``, in
    which case the pooled backbone features are the embedding. ``input_size``
    resizes the student's view for a teacher that wants another resolution.
    """

    def __init__(self, backbone: nn.Module, head: nn.Module | None = None, input_size: int | None = None):
        super().__init__()
        self.backbone = backbone
        self.head = head if head is not None else nn.Identity()
        self.input_size = input_size
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> "FrozenTeacher":
        # The teacher's BN statistics must never change: ignore model.train().
        return super().train(False)

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if self.input_size is not None and images.shape[-1] != self.input_size:
            images = F.interpolate(images, size=self.input_size, mode="bilinear", align_corners=False, antialias=True)
        return F.normalize(self.head(self.backbone(images)).float(), dim=1)

    @torch.no_grad()
    def embed_dim(self, image_size: int = 64) -> int:
        """Embedding size C, found with one forward pass on a dummy batch."""
        param = next(self.parameters())
        return self(torch.zeros(2, 3, image_size, image_size, device=param.device, dtype=param.dtype)).shape[1]

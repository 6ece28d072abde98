"""Projection heads and the embedding network (backbone -> head -> L2 normalisation)."""

import torch
import torch.nn as nn
import torch.nn.functional as F


class MLPHead(nn.Sequential):
    """SEED / MoCo v2 head: Linear(d, d) - ReLU - Linear(d, out_dim)."""

    def __init__(self, in_dim: int, out_dim: int = 128, hidden_dim: int | None = None):
        hidden_dim = hidden_dim or in_dim
        super().__init__(nn.Linear(in_dim, hidden_dim), nn.ReLU(inplace=True), nn.Linear(hidden_dim, out_dim))


class EmbeddingNet(nn.Module):
    """``backbone`` (N x 3 x H x W -> N x D) followed by ``head`` (N x D -> N x C), L2-normalised."""

    def __init__(self, backbone: nn.Module, head: nn.Module):
        super().__init__()
        self.backbone = backbone
        self.head = head

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.head(self.backbone(images)), dim=1)

"""Centring of the teacher's embeddings (an option; the paper does not centre).

A head-less teacher (a supervised network's pooled post-ReLU features) gives embeddings that
share a large common component: on the stamps, ImageNet MobileNetV2's pooled features have a
mean pairwise cosine of 0.41 (0.01 once centred), so its similarity distribution over the queue
reflects that component as much as the images. DINO (Caron et al., 2021) centres its teacher's
outputs with a running mean; ``distill.teacher_centering: true`` does the same to SEED's teacher
embeddings before they are scored and queued:

    t' = normalize(t - c),    c <- m * c + (1 - m) * mean over the global batch of t

with ``c`` starting at zero and ``m = distill.centering_momentum`` (DINO: 0.9). The centre is
part of the training state (checkpointed, so a resumed run continues exactly).
"""

import torch
import torch.nn as nn
import torch.nn.functional as F

from seed_core.distributed import concat_all_gather


class TeacherCentering(nn.Module):
    def __init__(self, dim: int, momentum: float = 0.9):
        super().__init__()
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"centering momentum {momentum} must be in [0, 1)")
        self.momentum = momentum
        self.register_buffer("center", torch.zeros(dim))

    @torch.no_grad()
    def forward(self, emb: torch.Tensor) -> torch.Tensor:
        """The centred, re-normalised embeddings (N x C) of ``emb``; then the centre moves towards
        the mean of the global batch (every rank gets the same centre)."""
        centred = F.normalize(emb - self.center, dim=1)
        self.center.mul_(self.momentum).add_(concat_all_gather(emb).float().mean(0), alpha=1.0 - self.momentum)
        return centred

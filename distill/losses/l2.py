"""L2 distillation of normalised embeddings (the "L2" strategy of SEED's Table 5)."""

import torch

from ._precision import at_least_float32


def l2_distillation_loss(student_emb: torch.Tensor, teacher_emb: torch.Tensor) -> torch.Tensor:
    """Mean over the batch of ||z_S - z_T||^2 for L2-normalised N x C embeddings.

    For unit vectors this equals 2 - 2 cos(z_S, z_T).
    """
    if student_emb.shape != teacher_emb.shape:
        raise ValueError(f"shapes disagree: student {tuple(student_emb.shape)}, teacher {tuple(teacher_emb.shape)}")
    return (at_least_float32(student_emb) - at_least_float32(teacher_emb.detach())).pow(2).sum(dim=1).mean()

"""Dense (patch) distillation: the student's feature map regresses the teacher's patch features.

Beside SEED's global objective, a detection or segmentation backbone also needs features that are
right *where* things are. The teacher's patch tokens (a ViT's, without class and register tokens)
or last feature map (a CNN teacher's) form a grid T of H x W vectors; the student's last feature map,
through a small projection to the teacher's width, is resized to that grid and matched position by
position after L2 normalisation over channels:

    loss = 1/(N H W) sum_{n,y,x} || s^(n,y,x) - t^(n,y,x) ||^2 = mean(2 - 2 cos(s, t)),

with s = resize(student_map) and ^ the L2 normalisation. Normalising makes the loss blind to the
scale of either network's features (a ViT's patch norms differ by orders of magnitude between
families); it is 0 for aligned features, 2 for orthogonal and 4 for opposite ones.
"""

import torch
import torch.nn.functional as F

from ._precision import at_least_float32


def dense_distillation_loss(student_map: torch.Tensor, teacher_map: torch.Tensor) -> torch.Tensor:
    """Mean squared distance of the L2-normalised feature vectors, position by position.

    Args:
        student_map: N x C x h x w, the student's projected feature map (carries the gradient);
            resized bilinearly (half-pixel centres, no corner alignment) to the teacher's grid.
        teacher_map: N x C x H x W, the teacher's patch features as a grid (no gradient needed).

    Returns:
        The scalar loss, mean over the batch and the H x W positions.
    """
    if student_map.dim() != 4 or teacher_map.dim() != 4 or student_map.shape[:2] != teacher_map.shape[:2]:
        raise ValueError(
            f"feature maps disagree: student {tuple(student_map.shape)}, teacher {tuple(teacher_map.shape)} "
            "(expected N x C x h x w and N x C x H x W with the same N and C)"
        )
    with torch.autocast(student_map.device.type, enabled=False):
        student_map = at_least_float32(student_map)
        teacher_map = at_least_float32(teacher_map.detach())
        if student_map.shape[2:] != teacher_map.shape[2:]:
            student_map = F.interpolate(student_map, size=teacher_map.shape[2:], mode="bilinear", align_corners=False)
        student_unit = F.normalize(student_map, dim=1)  # N x C x H x W
        teacher_unit = F.normalize(teacher_map, dim=1)
        return (student_unit - teacher_unit).pow(2).sum(dim=1).mean()

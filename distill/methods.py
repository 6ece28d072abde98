"""SEED and its baselines as small modules that own their state (queues, momentum encoder).

Each method maps a list of augmented views (each N x 3 x H x W) to
``(loss, logs)`` and updates its queues after the loss is computed. The losses
themselves are the pure functions of :mod:`distill.losses`.

The teacher only ever sees the first view, so its output can be computed ahead:
``method(views, teacher_emb=...)`` takes the teacher's embeddings of ``views[0]``
(N x C, e.g. read from :mod:`distill.teacher_cache`) and then does not run the
teacher, which may be ``None``. The result is the same as with a live teacher.
"""

import copy

import torch
import torch.nn as nn

from seed_core.distributed import concat_all_gather

from .centering import TeacherCentering
from .feature_maps import FeatureMapTap
from .losses import dense_distillation_loss, info_nce_loss, l2_distillation_loss, seed_loss
from .queue import EmbeddingQueue
from .shuffle_bn import batch_shuffle, batch_unshuffle


def teacher_embeddings(
    teacher: nn.Module | None, images: torch.Tensor, teacher_emb: torch.Tensor | None
) -> torch.Tensor:
    """``teacher_emb`` when given (precomputed), else ``teacher(images)``: N x C, no gradient."""
    if teacher_emb is not None:
        return teacher_emb
    if teacher is None:
        raise ValueError(
            "this method was built without a teacher (its embeddings come from a teacher cache): pass teacher_emb"
        )
    return teacher(images)


class SEED(nn.Module):
    """Self-supervised distillation (Fang et al., ICLR 2021): the student matches the
    teacher's similarity distribution over a queue of teacher embeddings.

    Teacher and student see the same augmented view. ``teacher`` is ``None`` when its
    embeddings are always passed in (``teacher_emb``).
    """

    num_views = 1

    def __init__(
        self,
        student: nn.Module,
        teacher: nn.Module | None,
        embed_dim: int,
        queue_size: int = 65536,
        tau_student: float = 0.2,
        tau_teacher: float = 0.01,
        centering_momentum: float | None = None,
    ):
        super().__init__()
        self.student, self.teacher = student, teacher
        self.queue = EmbeddingQueue(queue_size, embed_dim)
        self.tau_student, self.tau_teacher = tau_student, tau_teacher
        # None: the paper (no centring); else DINO-style centring of the teacher (distill/centering.py)
        self.centering = None if centering_momentum is None else TeacherCentering(embed_dim, centering_momentum)

    def distill(
        self, images: torch.Tensor, teacher_emb: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """SEED loss on one view; returns (loss, student embeddings N x C). ``teacher_emb``
        (N x C): the teacher's embeddings of ``images``, when computed ahead."""
        student_emb = self.student(images)  # N x C
        teacher_emb = teacher_embeddings(self.teacher, images, teacher_emb)  # N x C, no grad
        if self.centering is not None:
            teacher_emb = self.centering(teacher_emb)
        # seed_loss keeps no reference to the queue, so it is updated in place right after.
        loss = seed_loss(student_emb, teacher_emb, self.queue.embeddings, self.tau_student, self.tau_teacher)
        self.queue.push(concat_all_gather(teacher_emb))  # after the loss: the batch is not its own negative
        return loss, student_emb

    def forward(
        self, views: list[torch.Tensor], teacher_emb: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        loss, _ = self.distill(views[0], teacher_emb)
        return loss, {"loss_seed": loss.detach()}


class MomentumContrast(nn.Module):
    """MoCo v2's key side (He et al., 2020; Chen et al., 2020): an EMA copy of the
    student, shuffle-BN under DDP, and a queue of keys. Not a full method: it scores
    queries that the owner computes with the student."""

    def __init__(
        self,
        student: nn.Module,
        embed_dim: int,
        queue_size: int = 65536,
        temperature: float = 0.2,
        momentum: float = 0.999,
    ):
        super().__init__()
        self.key_encoder = copy.deepcopy(student).requires_grad_(False)
        self.queue = EmbeddingQueue(queue_size, embed_dim)
        self.temperature, self.momentum = temperature, momentum

    @torch.no_grad()
    def _momentum_update(self, student: nn.Module) -> None:
        for key_param, param in zip(self.key_encoder.parameters(), student.parameters()):
            key_param.mul_(self.momentum).add_(param.detach(), alpha=1 - self.momentum)

    def forward(self, student: nn.Module, query_emb: torch.Tensor, key_images: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            self._momentum_update(student)
            # Shuffle BN: keys are computed on a batch permuted across GPUs, so BN
            # statistics cannot leak which key matches which query (MoCo, Sec. 3.3).
            shuffled, restore = batch_shuffle(key_images)
            key_emb = batch_unshuffle(self.key_encoder(shuffled), restore)  # N x C
        loss = info_nce_loss(query_emb, key_emb, self.queue.embeddings.clone(), self.temperature)
        self.queue.push(concat_all_gather(key_emb))
        return loss


class MoCo(nn.Module):
    """Plain MoCo v2 student, no teacher: the self-supervised baseline SEED is compared against."""

    num_views = 2

    def __init__(
        self,
        student: nn.Module,
        embed_dim: int,
        queue_size: int = 65536,
        temperature: float = 0.2,
        momentum: float = 0.999,
    ):
        super().__init__()
        self.student = student
        self.moco = MomentumContrast(student, embed_dim, queue_size, temperature, momentum)

    def forward(
        self, views: list[torch.Tensor], teacher_emb: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """``teacher_emb`` is ignored: there is no teacher (the engine's uniform call)."""
        loss = self.moco(self.student, self.student(views[0]), views[1])
        return loss, {"loss_moco": loss.detach()}


class L2Distill(nn.Module):
    """Baseline: regress the teacher's normalised embedding (SEED's Table 5, "L2")."""

    num_views = 1

    def __init__(self, student: nn.Module, teacher: nn.Module | None):
        super().__init__()
        self.student, self.teacher = student, teacher

    def forward(
        self, views: list[torch.Tensor], teacher_emb: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        student_emb = self.student(views[0])  # N x C
        loss = l2_distillation_loss(student_emb, teacher_embeddings(self.teacher, views[0], teacher_emb))
        return loss, {"loss_l2": loss.detach()}


class SEEDMoCo(SEED):
    """SEED plus the student's own MoCo v2 loss: loss = SEED + moco_weight * InfoNCE."""

    num_views = 2

    def __init__(
        self,
        student: nn.Module,
        teacher: nn.Module | None,
        embed_dim: int,
        queue_size: int = 65536,
        tau_student: float = 0.2,
        tau_teacher: float = 0.01,
        moco_temperature: float = 0.2,
        moco_momentum: float = 0.999,
        moco_weight: float = 1.0,
        centering_momentum: float | None = None,
    ):
        super().__init__(student, teacher, embed_dim, queue_size, tau_student, tau_teacher, centering_momentum)
        self.moco = MomentumContrast(student, embed_dim, queue_size, moco_temperature, moco_momentum)
        self.moco_weight = moco_weight

    def forward(
        self, views: list[torch.Tensor], teacher_emb: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        loss_seed, student_emb = self.distill(views[0], teacher_emb)
        loss_moco = self.moco(self.student, student_emb, views[1])
        loss = loss_seed + self.moco_weight * loss_moco
        return loss, {"loss_seed": loss_seed.detach(), "loss_moco": loss_moco.detach()}


class SEEDDense(SEED):
    """SEED plus dense distillation: loss = SEED + dense_weight * dense (:mod:`distill.losses.dense`).

    The student's last feature map goes through ``projector`` (a 1 x 1 convolution to the
    teacher's width, trained with the student and not exported) and regresses the teacher's
    patch features (a ViT's patch tokens, a CNN teacher's last feature map) on the teacher's
    grid. Both maps are caught during the forwards SEED runs anyway (:mod:`distill.feature_maps`),
    so the teacher runs once; it must run live: its patch features are not cached.
    """

    def __init__(
        self,
        student: nn.Module,
        teacher: nn.Module,
        embed_dim: int,
        image_size: int,
        queue_size: int = 65536,
        tau_student: float = 0.2,
        tau_teacher: float = 0.01,
        dense_weight: float = 1.0,
        centering_momentum: float | None = None,
    ):
        super().__init__(student, teacher, embed_dim, queue_size, tau_student, tau_teacher, centering_momentum)
        self.dense_weight = dense_weight
        self.student_map, self.teacher_map = FeatureMapTap(student.backbone), FeatureMapTap(teacher.backbone)
        student_channels, teacher_channels = self._map_widths(image_size)
        self.projector = nn.Conv2d(student_channels, teacher_channels, kernel_size=1)

    @torch.no_grad()
    def _map_widths(self, image_size: int) -> tuple[int, int]:
        """The channels of both feature maps, from one forward of a blank view (BN statistics kept)."""
        probe = torch.zeros(1, 3, image_size, image_size)
        was_training = self.student.training
        self.student.eval()
        self.student(probe), self.teacher(probe)
        self.student.train(was_training)
        return self.student_map.map.shape[1], self.teacher_map.map.shape[1]

    def forward(
        self, views: list[torch.Tensor], teacher_emb: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        if teacher_emb is not None:
            raise ValueError("seed+dense needs the live teacher's patch features: they are not cached")
        loss_seed, _ = self.distill(views[0])  # runs student and teacher: both maps are caught
        loss_dense = dense_distillation_loss(self.projector(self.student_map.map), self.teacher_map.map)
        loss = loss_seed + self.dense_weight * loss_dense
        return loss, {"loss_seed": loss_seed.detach(), "loss_dense": loss_dense.detach()}

"""Build the method of a :class:`~distill.schema.DistillConfig`: student, teacher, queues."""

import logging

import torch
import torch.nn as nn

from seed_core.config import ConfigError, resolve_path

from .checkpoints import load_pretrained
from .data import IMAGENET
from .heads import EmbeddingNet, MLPHead
from .methods import SEED, L2Distill, MoCo, SEEDDense, SEEDMoCo
from .models import build_backbone
from .schema import NEEDS_TEACHER, TEACHER_UNSAFE_OPTION, DistillConfig
from .teacher import FrozenTeacher, describe_norm, resolve_input_norm
from .vit import DinoViT

log = logging.getLogger(__name__)


def build_teacher(cfg: DistillConfig) -> FrozenTeacher:
    t = cfg.teacher
    backbone, head, parsed = load_pretrained(
        resolve_path(t.weights),
        None if t.arch == "auto" else t.arch,
        layout=t.layout,
        allow_unsafe_pickle=t.allow_unsafe_pickle,
        use_head=t.use_head,
        unsafe_option=TEACHER_UNSAFE_OPTION,
    )
    if isinstance(backbone, DinoViT):
        backbone.pool = t.vit_pool
        size = t.input_size or cfg.data.image_size
        if size % backbone.patch_size:
            raise ConfigError(
                f"the {backbone.family} ViT teacher takes multiples of its {backbone.patch_size} px patches; "
                f"its input is {size} px (teacher.input_size, else data.image_size): set teacher.input_size="
                f"{size // backbone.patch_size * backbone.patch_size or backbone.patch_size} or another multiple"
            )
        pooled = {"cls": "class token", "mean": "mean patch token", "cls+mean": "class + mean patch tokens"}[t.vit_pool]
    elif t.vit_pool != "cls":
        raise ConfigError(
            f"teacher.vit_pool={t.vit_pool} applies to DINOv2/DINOv3 ViT teachers; {t.arch} pools as its "
            f"architecture does: leave teacher.vit_pool=cls"
        )
    else:
        pooled = "pooled features"
    log.info(
        "teacher %s from %s (layout %s, %s)",
        t.arch,
        t.weights,
        parsed.layout,
        "projection head" if head is not None else pooled,
    )
    input_norm, source = resolve_input_norm(t.input_norm, parsed.layout)
    log.info(
        "teacher input: %s (%s)%s",
        describe_norm(input_norm),
        source,
        "" if input_norm == IMAGENET else "; the student's ImageNet-normalised views are re-normalised for it",
    )
    return FrozenTeacher(backbone, head, input_size=t.input_size, input_norm=input_norm, view_norm=IMAGENET)


def build_student(arch: str, out_dim: int) -> EmbeddingNet:
    backbone, feature_dim = build_backbone(arch)
    return EmbeddingNet(backbone, MLPHead(feature_dim, out_dim))


def build_method(
    cfg: DistillConfig, teacher: nn.Module | None = None, cached_embed_dim: int | None = None
) -> nn.Module:
    """The distillation module for ``cfg.distill.strategy``.

    ``teacher`` overrides ``cfg.teacher`` (tests, or a teacher built in memory).
    ``cached_embed_dim`` builds the method without any teacher (``method.teacher`` is
    None): every teacher embedding, of that size, comes from a complete teacher cache.
    The student's head outputs the teacher's embedding size, so that both live in
    the same space as the queue; plain MoCo uses ``student.embed_dim``.

    The torch RNG is seeded with ``train.seed`` right before the student is built, so
    the student and the queues start the same whether or not a teacher was built first
    (building one draws its random initialisation before loading its weights).
    """
    d = cfg.distill
    if d.strategy == "moco":
        torch.manual_seed(cfg.train.seed)
        student = build_student(cfg.student.arch, cfg.student.embed_dim)
        return MoCo(student, cfg.student.embed_dim, d.queue_size, d.moco_temperature, d.moco_momentum)
    assert d.strategy in NEEDS_TEACHER
    if cached_embed_dim is not None:
        teacher, embed_dim = None, cached_embed_dim
    else:
        teacher = teacher if teacher is not None else build_teacher(cfg)
        embed_dim = teacher.embed_dim(cfg.data.image_size)
    torch.manual_seed(cfg.train.seed)
    student = build_student(cfg.student.arch, embed_dim)
    centering = d.centering_momentum if d.teacher_centering else None
    if d.strategy == "seed":
        return SEED(student, teacher, embed_dim, d.queue_size, d.tau_student, d.tau_teacher, centering)
    if d.strategy == "l2":
        return L2Distill(student, teacher)
    if d.strategy == "seed+dense":
        return SEEDDense(
            student,
            teacher,
            embed_dim,
            cfg.data.image_size,
            d.queue_size,
            d.tau_student,
            d.tau_teacher,
            d.dense_weight,
            centering,
        )
    return SEEDMoCo(
        student,
        teacher,
        embed_dim,
        d.queue_size,
        d.tau_student,
        d.tau_teacher,
        d.moco_temperature,
        d.moco_momentum,
        d.moco_weight,
        centering,
    )

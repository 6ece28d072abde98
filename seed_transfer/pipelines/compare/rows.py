"""The comparison's rows: the students of its distillations, random init, raw pixels and the teacher;
which of them a fine-tuning stage takes, into which folder, and with which RNG seeds. Read by
:func:`~.plan.resolve` only: every stage after it takes the rows from the plan."""

from __future__ import annotations

import logging
from pathlib import Path

from ...backbones import PIXELS
from ..stages import row_dir_name
from .schema import CompareConfig, Row

log = logging.getLogger(__name__)
RANDOM_SEED_STRIDE = 1000  # random init's member m fine-tunes with RNG seeds 1000 m + k (see seed_offset)


def student_rows(cfg: CompareConfig, configs: dict) -> list[Row]:
    """One row per (strategy, member) of ``configs``, its weights the student its distillation exports."""
    from distill.trainer import STUDENT_NAME

    return [
        Row(strategy, str(Path(dcfg.train.output_dir) / STUDENT_NAME), cfg.student_arch, strategy, member)
        for (strategy, member), dcfg in configs.items()
    ]


def build_rows(cfg: CompareConfig, students: list[Row]) -> list[Row]:
    """The students, then random init (one member per distillation seed: random-init seeds
    ``distill.members()``), raw pixels and the teacher (fixed, one member each)."""
    rows = list(students)
    if cfg.rows.random:
        rows += [Row("random", "random", cfg.student_arch, member=k) for k in cfg.distill.members()]
    if cfg.rows.pixels:
        rows.append(Row("pixels", PIXELS, PIXELS))
    if cfg.rows.teacher:
        rows.append(Row(cfg.rows.teacher_name, cfg.rows.teacher, cfg.rows.teacher_arch))
    return rows


def det_supported(row: Row, engine: str = "detectron2") -> bool:
    """Detectron2 (and MMSegmentation) transfer converts ResNet backbones (the student exports
    record their arch); the torchvision engine takes any backbone (with an FPN config)."""
    if row.weights == PIXELS:
        return False
    return engine == "torchvision" or row.weights == "random" or (row.arch or "resnet").startswith("resnet")


def replicated(row: Row) -> bool:
    """A row with independent members: a distilled student, or random init (not pixels, not a given file)."""
    return bool(row.strategy) or row.weights == "random"


def seed_offset(row: Row) -> int:
    """The RNG seed of fine-tuning seed k is this + k: random init's member m draws its own
    initialisations (seeds 1000 m, 1000 m + 1, ...); a student's seeds are the same for every member."""
    return RANDOM_SEED_STRIDE * row.member if row.weights == "random" else 0


def finetune_rows(cfg: CompareConfig, stage: str, rows: list[Row], engine: str | None = None) -> list[tuple[Row, Path]]:
    """The rows ``stage`` (det, seg) fine-tunes, each with its folder ``<output_dir>/<stage>/<tag>``: those
    the engine can build (MMSegmentation's ResNet takes ResNet rows only, as Detectron2), of each
    strategy and of random init the first ``<stage>.members`` members (null: all). Random init is
    replicated like the students, so that no difference borrows one random member's fine-tunes:
    its member k fine-tunes with seeds offset by :data:`RANDOM_SEED_STRIDE` x k (:func:`seed_offset`).
    ``engine``: detection's, resolved (default: resolved here from ``det.engine``)."""
    if stage == "det" and engine is None:
        from ...detection.plan import resolve_engine

        engine = resolve_engine(cfg.det.engine)
    engine = engine if stage == "det" else "detectron2"
    members = getattr(cfg, stage).members
    chosen = []
    for row in rows:
        if not det_supported(row, engine):
            log.info("[%s] %s: %s is not a ResNet, no row with the %s engine", stage, row.name, row.arch, engine)
        elif replicated(row) and members is not None and row.member >= cfg.distill.first_member + members:
            log.info("[%s] %s: not fine-tuned (%s.members=%d)", stage, row.tag, stage, members)
        else:
            chosen.append((row, Path(cfg.output_dir) / stage / row_dir_name(row.tag)))
    return chosen


def resnet_depth(arch: str | None) -> int | None:
    """``resnet50`` -> 50 (None for another architecture)."""
    digits = "".join(ch for ch in (arch or "") if ch.isdigit())
    return int(digits) if (arch or "").startswith("resnet") and digits else None

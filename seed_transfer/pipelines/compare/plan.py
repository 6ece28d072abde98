"""The sub-configs of a comparison, resolved from its config: one distillation config per
(strategy, member) and one classification config per (row, dataset)."""

from __future__ import annotations

from pathlib import Path

from distill.config import load_config
from distill.schema import DistillConfig
from distill.teacher_cache import share_teacher_cache

from ...classification.schema import TransferClsConfig
from ..stages import config_path, row_dir_name
from .schema import CompareConfig, Row

TEACHER_CACHE_DIR = "teacher_cache"  # <output_dir>/teacher_cache, shared by runs with the same teacher views


# ---------------------------------------------------------------- distillation
def _member_config(cfg: CompareConfig, strategy: str, member: int) -> DistillConfig:
    tag = Row(strategy, "", member=member).tag
    out = Path(cfg.output_dir) / "distill" / row_dir_name(tag)
    overrides = [*cfg.distill.overrides, f"student.arch={cfg.student_arch}", f"distill.strategy={strategy}",
                 f"train.output_dir={out}"]
    dcfg = load_config(DistillConfig, config_path(cfg.distill.config), overrides)
    if member:
        dcfg = load_config(DistillConfig, config_path(cfg.distill.config),
                           [*overrides, f"train.seed={dcfg.train.seed + member}"])
    return dcfg


def distill_configs(cfg: CompareConfig) -> dict[tuple[str, int], DistillConfig]:
    """Every distillation by (strategy, member): the shared config with only the strategy (and, for
    member k > 0, the seed + k and the folder ``<strategy>-s<k>``) changed. Runs that need the same
    teacher embeddings (e.g. ``seed`` and ``l2`` rows) share ``<output_dir>/teacher_cache``."""
    configs = {(s, m): _member_config(cfg, s, m) for s in cfg.distill.strategies for m in range(cfg.distill.seeds)}
    share_teacher_cache(list(configs.values()), Path(cfg.output_dir) / TEACHER_CACHE_DIR)
    return configs


def distill_config(cfg: CompareConfig, strategy: str, member: int = 0) -> DistillConfig:
    """The distillation of ``strategy``'s ``member``-th seed (see :func:`distill_configs`; a strategy
    the config does not list gets its own, unshared config)."""
    return distill_configs(cfg).get((strategy, member)) or _member_config(cfg, strategy, member)


# ---------------------------------------------------------------- classification
def cls_config(cfg: CompareConfig, row: Row, dataset: str | None) -> TransferClsConfig:
    overrides = [*cfg.cls.overrides, f"model.weights={row.weights}", f"model.name={row.tag}",
                 f"output_dir={Path(cfg.output_dir) / 'cls'}"]
    if row.weights == "random":
        overrides.append(f"model.seed={row.member}")
    if row.arch:
        overrides.append(f"model.arch={row.arch}")
    if dataset:
        name, _, root = dataset.partition(":")
        overrides += [f"data.name={name}"] + ([f"data.root={root}"] if root else [])
    return load_config(TransferClsConfig, config_path(cfg.cls.config), overrides)

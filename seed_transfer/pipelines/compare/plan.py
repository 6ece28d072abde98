"""The sub-configs of a comparison, resolved from its config: one distillation config per
(strategy, member), one classification config per (row, dataset), the detection plan and the
segmentation config; :func:`resolve` checks all of them before the first stage runs."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from seed_core.config import load_config, resolve_path
from distill.schema import DistillConfig
from distill.teacher_cache import share_teacher_cache

from ...classification.schema import TransferClsConfig
from ..stages import config_path, dataset_overrides, row_dir_name
from .schema import CompareConfig, Row

TEACHER_CACHE_DIR = "teacher_cache"  # <output_dir>/teacher_cache, shared by runs with the same teacher views


# ---------------------------------------------------------------- distillation
def _member_config(cfg: CompareConfig, strategy: str, member: int) -> DistillConfig:
    tag = Row(strategy, "", member=member).tag
    out = Path(cfg.output_dir) / "distill" / row_dir_name(tag)
    overrides = [
        *cfg.distill.overrides,
        f"student.arch={cfg.student_arch}",
        f"distill.strategy={strategy}",
        f"train.output_dir={out}",
    ]
    dcfg = load_config(DistillConfig, config_path(cfg.distill.config), overrides)
    if member:
        dcfg = load_config(
            DistillConfig, config_path(cfg.distill.config), [*overrides, f"train.seed={dcfg.train.seed + member}"]
        )
    return dcfg


def distill_configs(cfg: CompareConfig) -> dict[tuple[str, int], DistillConfig]:
    """Every distillation by (strategy, member) (members: ``distill.members()``): the shared config with
    only the strategy (and, for member k > 0, the seed + k and the folder ``<strategy>-s<k>``) changed.
    Runs that need the same teacher embeddings (e.g. ``seed`` and ``l2`` rows) share ``<output_dir>/teacher_cache``."""
    configs = {(s, m): _member_config(cfg, s, m) for s in cfg.distill.strategies for m in cfg.distill.members()}
    share_teacher_cache(list(configs.values()), Path(cfg.output_dir) / TEACHER_CACHE_DIR)
    return configs


def distill_config(cfg: CompareConfig, strategy: str, member: int = 0) -> DistillConfig:
    """The distillation of ``strategy``'s ``member``-th seed (see :func:`distill_configs`; a strategy
    the config does not list gets its own, unshared config)."""
    return distill_configs(cfg).get((strategy, member)) or _member_config(cfg, strategy, member)


# ---------------------------------------------------------------- classification
def cls_config(cfg: CompareConfig, row: Row, dataset: str | None) -> TransferClsConfig:
    overrides = [
        *cfg.cls.overrides,
        f"model.weights={row.weights}",
        f"model.name={row.tag}",
        f"output_dir={Path(cfg.output_dir) / 'cls'}",
    ]
    if row.weights == "random":
        overrides.append(f"model.seed={row.member}")
    if row.arch:
        overrides.append(f"model.arch={row.arch}")
    return load_config(TransferClsConfig, config_path(cfg.cls.config), [*overrides, *dataset_overrides(dataset)])


# ---------------------------------------------------------------- every sub-config, before anything runs
@dataclass(frozen=True)
class ComparePlan:
    """The comparison's sub-configs, each resolved and checked (see :func:`resolve`)."""

    distill: dict  # (strategy, member) -> DistillConfig
    cls: tuple  # one TransferClsConfig per dataset (of the random-init row; every row differs only in model.*)
    det: object | None  # seed_transfer.detection.plan.DetPlan (the schedule, norms and engine every row gets)
    seg: object | None  # seed_transfer.segmentation.schema.SegTransferConfig


def resolve(cfg: CompareConfig) -> ComparePlan:
    """Resolve and check every sub-config of ``cfg`` (distillation, classification, detection,
    segmentation) without running or writing anything, so a typo in ``det.options`` or a bad value
    in ``cls.overrides`` stops the comparison before hours of distillation, naming the key."""
    template = Row("random", "random", cfg.student_arch)
    cls = tuple(cls_config(cfg, template, d) for d in cfg.cls.datasets or [None]) if cfg.cls.enabled else ()
    det = None
    if cfg.det.enabled:
        from ...detection.plan import DetRequest, make_plan

        det = make_plan(
            DetRequest(
                str(config_path(cfg.det.config)),
                "random",
                Path(cfg.output_dir) / "det",
                seeds=cfg.det.seeds,
                data_root=resolve_path(cfg.det.data_root),
                opts=tuple(cfg.det.all_opts()),
                engine=cfg.det.engine,
                num_gpus=cfg.det.num_gpus,
                ims_per_batch=cfg.det.ims_per_batch,
            )
        )
    seg = None
    if cfg.seg.enabled:
        from ...segmentation.mmseg_setup import import_mmseg
        from ...segmentation.schema import SegTransferConfig

        import_mmseg()  # the [seg] extra, with its install command when it is missing
        seg = load_config(SegTransferConfig, config_path(cfg.seg.config), list(cfg.seg.opts))
    return ComparePlan(distill_configs(cfg), cls, det, seg)

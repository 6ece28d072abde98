"""The comparison, resolved once: :func:`resolve` turns a :class:`~.schema.CompareConfig` into a frozen
:class:`ComparePlan` that carries every stage's resolved config (one distillation config per
(strategy, member), one classification config per (row, dataset), one detection
:class:`~seed_transfer.detection.plan.DetPlan` and one segmentation
:class:`~seed_transfer.segmentation.plan.SegPlan` per fine-tuned row), checked before the first stage
runs. The stages, the cluster jobs, the stale-output rule and the report read the plan; none of
them resolves a config again, so what was checked is what runs."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from distill.schema import DistillConfig
from distill.teacher_cache import share_teacher_cache
from seed_core.config import load_config, resolve_path

from ...classification.schema import TransferClsConfig
from ..stages import config_path, dataset_overrides, row_dir_name
from .rows import build_rows, finetune_rows, resnet_depth, seed_offset, student_rows
from .schema import CompareConfig, Row

TEACHER_CACHE_DIR = "teacher_cache"  # <output_dir>/teacher_cache, shared by runs with the same teacher views
FINETUNE_STAGES = ("det", "seg")


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


@dataclass(frozen=True)
class ClsRun:
    """One classification transfer: ``row`` on one dataset, with its resolved config."""

    row: Row
    config: TransferClsConfig

    @property
    def stage(self) -> str:
        return f"cls {self.config.data.name}"

    @property
    def result(self) -> Path:
        """The result file :func:`~seed_transfer.classification.transfer.run_cls_transfer` writes."""
        from ...classification.transfer import result_path

        return result_path(self.config)


# ---------------------------------------------------------------- fine-tuning (detection, segmentation)
def finetune_settings(cfg: CompareConfig, stage: str) -> dict:
    """What a fine-tuning stage's results depend on (recorded beside them, compared on the next run)."""
    section = getattr(cfg, stage)
    opts = section.all_opts() if stage == "det" else list(section.opts)
    settings = {"config": section.config, "opts": opts, "data_root": section.data_root}
    if stage == "det":
        settings.update(engine=section.engine, ims_per_batch=section.ims_per_batch)
    return settings


@dataclass(frozen=True)
class FinetuneRun:
    """The fine-tuning of one row by one stage (det, seg), every seed, with its resolved plan."""

    stage: str
    row: Row
    plan: object  # seed_transfer.detection.plan.DetPlan (det) or seed_transfer.segmentation.plan.SegPlan (seg)
    settings: dict  # the stage's finetune_settings, recorded beside the outputs (the stale-output rule)

    @property
    def out(self) -> Path:
        return self.plan.request.output_dir

    @property
    def seeds(self) -> int:
        return self.plan.request.seeds


def _det_runs(cfg: CompareConfig, rows: list[Row], settings: dict) -> tuple[FinetuneRun, ...]:
    from ...detection.plan import DetRequest, make_plan, resolve_engine

    engine = resolve_engine(cfg.det.engine)  # auto: decided (and logged) once for every row
    return tuple(
        FinetuneRun(
            "det",
            row,
            make_plan(
                DetRequest(
                    str(config_path(cfg.det.config)),
                    row.weights,
                    out,
                    seeds=cfg.det.seeds,
                    name=row.name,
                    data_root=resolve_path(cfg.det.data_root),
                    opts=tuple(cfg.det.all_opts()),
                    resume=True,  # an interrupted seed continues from its last checkpoint
                    arch=row.arch,
                    seed_offset=seed_offset(row),
                    engine=engine,
                    num_gpus=cfg.det.num_gpus,
                    ims_per_batch=cfg.det.ims_per_batch,
                )
            ),
            settings,
        )
        for row, out in finetune_rows(cfg, "det", rows, engine)
    )


def _seg_runs(cfg: CompareConfig, rows: list[Row], settings: dict) -> tuple[FinetuneRun, ...]:
    from ...finetune import FinetuneRequest
    from ...segmentation.plan import make_plan

    runs = []
    for row, out in finetune_rows(cfg, "seg", rows):
        # a random init has no checkpoint to take the depth from
        depth = [f"model.depth={resnet_depth(row.arch)}"] if row.weights == "random" else []
        request = FinetuneRequest(
            config_path(cfg.seg.config),
            row.weights,
            out,
            seeds=cfg.seg.seeds,
            name=row.name,
            data_root=resolve_path(cfg.seg.data_root),
            opts=(*cfg.seg.opts, *depth),
            arch=row.arch,
            seed_offset=seed_offset(row),
        )
        runs.append(FinetuneRun("seg", row, make_plan(request), settings))
    return tuple(runs)


# ---------------------------------------------------------------- the plan
@dataclass(frozen=True)
class ComparePlan:
    """The comparison's every stage, resolved and checked (see :func:`resolve`)."""

    cfg: CompareConfig  # output_dir, rows, report texts; no stage reads its sub-configs again
    distill: dict  # (strategy, member) -> DistillConfig
    students: tuple[Row, ...]  # one per distill entry, in its order; weights: the student it exports
    rows: tuple[Row, ...]  # the students, random init, pixels, the teacher
    cls: tuple[ClsRun, ...]  # dataset by dataset, row by row
    cls_protocol: tuple[TransferClsConfig, ...]  # per dataset: the protocol every row shares (random init's)
    det: tuple[FinetuneRun, ...]  # the rows detection fine-tunes
    seg: tuple[FinetuneRun, ...]  # the rows segmentation fine-tunes
    settings: dict  # per enabled fine-tuning stage: what its folders' results depend on (finetune_settings)

    def finetuning(self, stage: str) -> tuple[FinetuneRun, ...]:
        """The fine-tuning runs of ``stage`` (det, seg)."""
        return getattr(self, stage)


def resolve(cfg: CompareConfig) -> ComparePlan:
    """Resolve and check every sub-config of ``cfg`` (distillation, classification, detection,
    segmentation) without running or writing anything, so a typo in ``det.options`` or a bad value
    in ``cls.overrides`` stops the comparison before hours of distillation, naming the key."""
    datasets = cfg.cls.datasets or [None]
    template = Row("random", "random", cfg.student_arch)
    cls_protocol = tuple(cls_config(cfg, template, d) for d in datasets) if cfg.cls.enabled else ()
    distill = distill_configs(cfg)
    students = student_rows(cfg, distill)
    rows = build_rows(cfg, students)
    cls = tuple(ClsRun(row, cls_config(cfg, row, d)) for d in datasets for row in rows) if cfg.cls.enabled else ()
    settings = {stage: finetune_settings(cfg, stage) for stage in FINETUNE_STAGES if getattr(cfg, stage).enabled}
    det = _det_runs(cfg, rows, settings["det"]) if cfg.det.enabled else ()
    seg = ()
    if cfg.seg.enabled:
        from ...segmentation.mmseg_setup import import_mmseg

        import_mmseg()  # the [seg] extra, with its install command when it is missing (even with no row to tune)
        seg = _seg_runs(cfg, rows, settings["seg"])
    return ComparePlan(cfg, distill, tuple(students), tuple(rows), cls, cls_protocol, det, seg, settings)

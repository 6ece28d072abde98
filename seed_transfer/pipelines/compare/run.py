"""One comparison, end to end: SEED against plain self-supervised training (MoCo v2),
random init and (optionally) a supervised/teacher checkpoint, on classification transfer
(linear + kNN) and detection transfer, with a report.

    result = run_compare(load_config(CompareConfig, "configs/compare/demo.yaml", ["det.seeds=3"]))

Stages, each writing under ``output_dir`` and skipped when its outputs exist (so a
re-run after an interruption continues where it stopped):

- ``distill/<strategy>/``: one student per strategy from the *same* distillation config
  (same data, epochs, batch, augmentation); only ``distill.strategy`` differs.
- ``cls/<row>__<dataset>.json``: linear (C sweep) and kNN transfer of every row.
- ``det/<row>/``: detection fine-tuning of every ResNet row with one identical schedule.
- ``seg/<row>/``: segmentation fine-tuning (MMSegmentation, optional) of every ResNet row, likewise.
- ``report.md``, ``results.csv``, ``loss_curves.png``, ``results.png``: always rewritten.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

from seed_core.config import dump_config, resolve_path
from seed_core.run_lock import run_lock

from ...backbones import PIXELS
from ...classification import report as cls_report
from ...classification.transfer import result_path
from ..stages import Stages, config_path, row_dir_name, student_is_complete, write_settings
from ..stale import refuse_stale, stale_folder, stale_result, stale_student
from .plan import ComparePlan, cls_config, distill_configs, resolve
from .registration import register
from .report import write_report
from .schema import CompareConfig, Row

log = logging.getLogger(__name__)
RANDOM_SEED_STRIDE = 1000  # random init's member m fine-tunes with RNG seeds 1000 m + k (see seed_offset)


def check_not_stale(cfg: CompareConfig, plan: ComparePlan | None = None) -> None:
    """Refuse, before anything runs, an ``output_dir`` whose students, classification results or
    fine-tuning folders were produced by other settings, naming them (the rule of
    :mod:`seed_transfer.pipelines.stale`; fine-tuning settings: :func:`finetune_settings`). ``plan``:
    the sub-configs when already resolved (:func:`~.plan.resolve`)."""
    problems = []
    for dcfg in (plan.distill if plan else distill_configs(cfg)).values():
        changed = stale_student(dcfg)
        if changed:
            problems.append(f"{dcfg.train.output_dir}: {'; '.join(changed)}")
    if cfg.cls.enabled:
        template = Row("random", "random", cfg.student_arch)
        for ccfg in plan.cls if plan else [cls_config(cfg, template, d) for d in cfg.cls.datasets or [None]]:
            for result in sorted(Path(ccfg.output_dir).glob(f"*__{ccfg.data.name}.json")):
                changed = stale_result(json.loads(result.read_text()).get("config"), ccfg)
                if changed:
                    problems.append(f"{result}: {'; '.join(changed)}")
    for stage in ("det", "seg"):
        if getattr(cfg, stage).enabled:
            for folder in sorted((Path(cfg.output_dir) / stage).glob("*/")):
                changed = stale_folder(folder, finetune_settings(cfg, stage))
                if changed:
                    problems.append(f"{folder}: {'; '.join(changed)}")
    refuse_stale(cfg.output_dir, problems)


def student_rows(cfg: CompareConfig, configs: dict) -> list[Row]:
    """One row per (strategy, member) of ``configs``, its weights the student its distillation exports."""
    from distill.trainer import STUDENT_NAME

    return [
        Row(strategy, str(Path(dcfg.train.output_dir) / STUDENT_NAME), cfg.student_arch, strategy, member)
        for (strategy, member), dcfg in configs.items()
    ]


def results_outlive_student(cfg: CompareConfig, row: Row) -> bool:
    """True when the student of ``row`` is gone (no export, no checkpoint to resume) but every
    result made from it is there: its classification results and, where it is fine-tuned, every
    seed's results (:func:`seeds_done`). Like a deleted intermediate file that ``make`` does not
    rebuild while its targets are up to date, it is not distilled again (a warning names it): a student removed to save
    space, or a run whose results were kept without its weights. Deleting those results distils it
    again. Their settings, and the distillation's as its ``config.yaml`` records them, are still
    checked against the config (:func:`check_not_stale`)."""
    from distill.trainer import CHECKPOINT_NAME

    student = Path(row.weights)
    if student.exists() or (student.parent / CHECKPOINT_NAME).exists():
        return False
    outputs = []
    if cfg.cls.enabled:
        outputs += [result_path(cls_config(cfg, row, dataset)).is_file() for dataset in cfg.cls.datasets or [None]]
    for stage in ("det", "seg"):
        if getattr(cfg, stage).enabled:
            seeds = getattr(cfg, stage).seeds
            outputs += [seeds_done(out, seeds) for _, out in finetune_rows(cfg, stage, [row])]
    if not outputs or not all(outputs):
        return False
    log.warning(
        "[distill] %s: %s is gone but every result made from it exists; not distilled again "
        "(delete its results under %s to distil it again)",
        row.tag,
        student,
        cfg.output_dir,
    )
    return True


def student_done(cfg: CompareConfig, row: Row, dcfg) -> bool:
    """The distillation of ``row`` needs no run: its student is complete, or its results outlive it."""
    return student_is_complete(Path(row.weights), dcfg) or results_outlive_student(cfg, row)


def run_distill(cfg: CompareConfig, stages: Stages, configs: dict | None = None) -> list[Row]:
    """Distil (or resume, or skip) every (strategy, member) of ``configs`` (default: :func:`~.plan.distill_configs`)."""
    from distill.trainer import train

    configs = configs or distill_configs(cfg)
    rows = student_rows(cfg, configs)
    for row, dcfg in zip(rows, configs.values()):
        student = Path(row.weights)
        done = student_done(cfg, row, dcfg)
        row.weights = str(stages.run("distill", row.tag, done, lambda: student if done else train(dcfg, resume=True)))
    return rows


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


def run_cls(cfg: CompareConfig, rows: list[Row], stages: Stages) -> list[dict]:
    from ...classification.transfer import run_cls_transfer

    results = []
    for dataset in cfg.cls.datasets or [None]:
        for row in rows:
            ccfg = cls_config(cfg, row, dataset)
            out = result_path(ccfg)
            done = out.is_file()
            result = stages.run(
                f"cls {ccfg.data.name}",
                row.tag,
                done,
                lambda: json.loads(out.read_text()) if done else run_cls_transfer(ccfg),
            )
            results.append({**result, "row": row.name, "member": row.member})
    return results


# ---------------------------------------------------------------- detection
def det_supported(row: Row, engine: str = "detectron2") -> bool:
    """Detectron2 (and MMSegmentation) transfer converts ResNet backbones (the student exports
    record their arch); the torchvision engine takes any backbone (with an FPN config)."""
    if row.weights == PIXELS:
        return False
    return engine == "torchvision" or row.weights == "random" or (row.arch or "resnet").startswith("resnet")


def finetune_settings(cfg: CompareConfig, stage: str) -> dict:
    """What a fine-tuning stage's results depend on (recorded beside them, compared on the next run)."""
    section = getattr(cfg, stage)
    opts = section.all_opts() if stage == "det" else list(section.opts)
    settings = {"config": section.config, "opts": opts, "data_root": section.data_root}
    if stage == "det":
        settings.update(engine=section.engine, ims_per_batch=section.ims_per_batch)
    return settings


def finetune_rows(cfg: CompareConfig, stage: str, rows: list[Row]) -> list[tuple[Row, Path]]:
    """The rows ``stage`` (det, seg) fine-tunes, each with its folder ``<output_dir>/<stage>/<tag>``: those
    the engine can build (MMSegmentation's ResNet takes ResNet rows only, as Detectron2), of each
    strategy and of random init the first ``<stage>.members`` members (null: all). Random init is
    replicated like the students, so that no difference borrows one random member's fine-tunes:
    its member k fine-tunes with seeds offset by :data:`RANDOM_SEED_STRIDE` x k (:func:`finetune`)."""
    engine = "detectron2"
    if stage == "det":
        from ...detection.plan import resolve_engine

        engine = resolve_engine(cfg.det.engine)
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


def replicated(row: Row) -> bool:
    """A row with independent members: a distilled student, or random init (not pixels, not a given file)."""
    return bool(row.strategy) or row.weights == "random"


def seed_offset(row: Row) -> int:
    """The RNG seed of fine-tuning seed k is this + k: random init's member m draws its own
    initialisations (seeds 1000 m, 1000 m + 1, ...); a student's seeds are the same for every member."""
    return RANDOM_SEED_STRIDE * row.member if row.weights == "random" else 0


def finetune(cfg: CompareConfig, stage: str, row: Row, out: Path, seed: int | None = None) -> dict:
    """Fine-tune ``row`` into ``out`` with the stage's one schedule: every seed, then the summary (returned);
    with ``seed``, that seed only (a cluster job of :mod:`.dag`; returns its metrics)."""
    write_settings(out, finetune_settings(cfg, stage))  # before the first seed: a partly done folder is judged too
    if stage == "det":
        from ...detection.plan import resolve_engine
        from ...detection.transfer import run_detection_transfer

        return run_detection_transfer(
            str(config_path(cfg.det.config)),
            row.weights,
            out,
            seeds=cfg.det.seeds,
            name=row.name,
            data_root=resolve_path(cfg.det.data_root),
            opts=cfg.det.all_opts(),
            num_gpus=cfg.det.num_gpus,
            ims_per_batch=cfg.det.ims_per_batch,
            arch=row.arch,
            engine=resolve_engine(cfg.det.engine),
            resume=True,
            only_seed=seed,
            seed_offset=seed_offset(row),
        )  # an interrupted seed continues from its last checkpoint
    from ...segmentation.transfer import run_segmentation_transfer

    # a random init has no checkpoint to take the depth from
    depth = [f"model.depth={_resnet_depth(row.arch)}"] if row.weights == "random" else []
    return run_segmentation_transfer(
        config_path(cfg.seg.config),
        row.weights,
        out,
        seeds=cfg.seg.seeds,
        name=row.name,
        data_root=resolve_path(cfg.seg.data_root),
        opts=[*cfg.seg.opts, *depth],
        arch=row.arch,
        only_seed=seed,
        seed_offset=seed_offset(row),
    )


def seeds_done(out: Path, seeds: int) -> bool:
    """Every fine-tuning seed of ``out`` has finished: its summary covers them, or (cluster jobs, whose
    summary the last sequential pass writes) each seed's ``metrics.json`` is there."""
    from ...finetune import seed_metrics_file

    return summary_covers(out, seeds) or all(seed_metrics_file(out, k).is_file() for k in range(seeds))


def summary_covers(out: Path, seeds: int) -> bool:
    summary_file = out / "summary.json"
    return summary_file.is_file() and json.loads(summary_file.read_text()).get("seeds") == seeds


def run_finetuning(stage: str, cfg: CompareConfig, rows: list[Row], stages: Stages) -> dict[tuple[str, int], dict]:
    """:func:`finetune` of every row of :func:`finetune_rows`, skipped when its ``summary.json``
    covers the stage's seeds. Returns the summaries by (row name, member)."""
    seeds = getattr(cfg, stage).seeds
    summaries = {}
    for row, out in finetune_rows(cfg, stage, rows):
        done = summary_covers(out, seeds)
        summaries[(row.name, row.member)] = stages.run(
            stage,
            row.tag,
            done,
            lambda: json.loads((out / "summary.json").read_text()) if done else finetune(cfg, stage, row, out),
        )
    return summaries


def _resnet_depth(arch: str | None) -> int | None:
    digits = "".join(ch for ch in (arch or "") if ch.isdigit())
    return int(digits) if (arch or "").startswith("resnet") and digits else None


# ---------------------------------------------------------------- entry point
def run_compare(
    cfg: CompareConfig, command: str | None = None, jobs: dict | None = None, started: float | None = None
) -> dict:
    """Run every stage (skipping finished ones) and write the report (``command``, the command
    line that ran it, goes at its top); returns rows, results and stage records. ``jobs``: the
    ``{(stage, row): seconds}`` of stages that cluster jobs have run (:mod:`.dag`), ``started``
    the ``time.perf_counter()`` at which this invocation began (default: now)."""
    tic = time.perf_counter() if started is None else started
    plan = resolve(cfg)  # every sub-config checked before anything is written or run
    out = Path(cfg.output_dir)
    check_not_stale(cfg, plan)
    with run_lock(out, "comparison"):  # one writer: a second invocation on the folder stops
        return _run_stages(cfg, plan, command, jobs, tic)


def _run_stages(cfg: CompareConfig, plan: ComparePlan, command: str | None, jobs: dict | None, tic: float) -> dict:
    out = Path(cfg.output_dir)
    register(cfg)  # the design, fixed by the folder's first invocation
    dump_config(cfg, out / "config.yaml")
    stages = Stages(out / "stages.json", jobs)
    rows = build_rows(cfg, run_distill(cfg, stages, plan.distill))
    cls_results = run_cls(cfg, rows, stages) if cfg.cls.enabled else []
    if cls_results:
        cls_report.write_csv(cls_results, out / "cls" / "cls_results.csv")
        cls_report.plot_val_curves(cls_results, out / "cls" / "val_curves.png")
    det = run_finetuning("det", cfg, rows, stages) if cfg.det.enabled else {}
    seg = run_finetuning("seg", cfg, rows, stages) if cfg.seg.enabled else {}
    report = write_report(cfg, rows, cls_results, det, stages.records, time.perf_counter() - tic, seg, command)
    log.info("report written to %s", out / "report.md")
    return {
        "rows": [r.__dict__ for r in rows],
        "stages": stages.records,
        "report": str(out / "report.md"),
        "results_csv": str(out / "results.csv"),
        **report,
    }

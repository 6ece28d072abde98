"""One comparison, end to end: SEED against plain self-supervised training (MoCo v2),
random init and (optionally) a supervised/teacher checkpoint, on classification transfer
(linear + kNN) and detection transfer, with a report.

    result = run_compare(load_config(CompareConfig, "configs/compare/demo.yaml", ["det.seeds=3"]))

The config is resolved once into a :class:`~.plan.ComparePlan` (:func:`~.plan.resolve`), checked
against what ``output_dir`` already holds (:func:`check_not_stale`), and every stage and the report
run that plan. Stages, each writing under ``output_dir`` and skipped when its outputs exist (so a
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

from seed_core.config import dump_config
from seed_core.run_lock import run_lock

from ...classification import report as cls_report
from ..stages import Stages, student_is_complete, write_settings
from ..stale import refuse_stale, stale_folder, stale_result, stale_student
from .plan import FINETUNE_STAGES, ComparePlan, FinetuneRun, resolve
from .registration import register
from .report import write_report
from .schema import CompareConfig, Row

log = logging.getLogger(__name__)


def stale_outputs(plan: ComparePlan) -> list[str]:
    """The outputs in the plan's ``output_dir`` that other settings produced, one line each (the rule of
    :mod:`seed_transfer.pipelines.stale`): students against the plan's distillation configs,
    classification results against its protocol per dataset, fine-tuning folders against the settings
    its fine-tuning stages record (:func:`~.plan.finetune_settings`)."""
    problems, contents = [], {}  # contents: each data source's file record, taken once for all students
    for dcfg in plan.distill.values():
        changed = stale_student(dcfg, contents)
        if changed:
            problems.append(f"{dcfg.train.output_dir}: {'; '.join(changed)}")
    for ccfg in plan.cls_protocol:
        for result in sorted(Path(ccfg.output_dir).glob(f"*__{ccfg.data.name}.json")):
            changed = stale_result(json.loads(result.read_text()).get("config"), ccfg)
            if changed:
                problems.append(f"{result}: {'; '.join(changed)}")
    for stage, settings in plan.settings.items():
        for folder in sorted((Path(plan.cfg.output_dir) / stage).glob("*/")):
            changed = stale_folder(folder, settings)
            if changed:
                problems.append(f"{folder}: {'; '.join(changed)}")
    return problems


def check_not_stale(plan: ComparePlan) -> None:
    """Refuse, before anything runs, an ``output_dir`` whose students, classification results or
    fine-tuning folders were produced by other settings, naming them (:func:`stale_outputs`)."""
    refuse_stale(plan.cfg.output_dir, stale_outputs(plan))


def results_outlive_student(plan: ComparePlan, row: Row) -> bool:
    """True when the student of ``row`` is gone (no export, no checkpoint to resume) but every
    result made from it is there: its classification results and, where it is fine-tuned, every
    seed's results (:func:`seeds_done`). Like a deleted intermediate file that ``make`` does not
    rebuild while its targets are up to date, it is not distilled again (a warning names it): a student removed to save
    space, or a run whose results were kept without its weights. Deleting those results distils it
    again. Their settings, and the distillation's as its ``config.yaml`` records them, are still
    checked against the config (:func:`check_not_stale`)."""
    from seed_core.runtime import CHECKPOINT_NAME

    student = Path(row.weights)
    if student.exists() or (student.parent / CHECKPOINT_NAME).exists():
        return False
    outputs = [run.result.is_file() for run in plan.cls if run.row == row]
    for stage in FINETUNE_STAGES:
        outputs += [seeds_done(run.out, run.seeds) for run in plan.finetuning(stage) if run.row == row]
    if not outputs or not all(outputs):
        return False
    log.warning(
        "[distill] %s: %s is gone but every result made from it exists; not distilled again "
        "(delete its results under %s to distil it again)",
        row.tag,
        student,
        plan.cfg.output_dir,
    )
    return True


def student_done(plan: ComparePlan, row: Row, dcfg) -> bool:
    """The distillation of ``row`` needs no run: its student is complete, or its results outlive it."""
    return student_is_complete(Path(row.weights), dcfg) or results_outlive_student(plan, row)


def run_distill(plan: ComparePlan, stages: Stages) -> None:
    """Distil (or resume, or skip) every (strategy, member) of the plan into its student row's weights."""
    from distill.trainer import train

    for row, dcfg in zip(plan.students, plan.distill.values()):
        done = student_done(plan, row, dcfg)
        stages.run("distill", row.tag, done, lambda: None if done else train(dcfg, resume=True))


def run_cls(plan: ComparePlan, stages: Stages) -> list[dict]:
    """Every classification transfer of the plan (dataset by dataset, row by row), skipped when its
    result file exists; returns the results with their row and member."""
    from ...classification.transfer import run_cls_transfer

    results = []
    for run in plan.cls:
        done = run.result.is_file()
        result = stages.run(
            run.stage,
            run.row.tag,
            done,
            lambda: json.loads(run.result.read_text()) if done else run_cls_transfer(run.config),
        )
        results.append({**result, "row": run.row.name, "member": run.row.member})
    return results


# ---------------------------------------------------------------- fine-tuning (detection, segmentation)
def finetune(run: FinetuneRun, seed: int | None = None) -> dict:
    """Fine-tune ``run.row`` into ``run.out`` with its resolved plan: every seed, then the summary
    (returned); with ``seed``, that seed only (a cluster job of :mod:`.dag`; returns its metrics)."""
    write_settings(run.out, run.settings)  # before the first seed: a partly done folder is judged too
    plan = run.plan if seed is None else run.plan.only(seed)
    if run.stage == "det":
        from ...detection.transfer import run_detection_transfer

        return run_detection_transfer(plan)
    from ...segmentation.transfer import run_segmentation_transfer

    return run_segmentation_transfer(plan)


def seeds_done(out: Path, seeds: int) -> bool:
    """Every fine-tuning seed of ``out`` has finished: its summary covers them, or (cluster jobs, whose
    summary the last sequential pass writes) each seed's ``metrics.json`` is there."""
    from ...finetune import seed_metrics_file

    return summary_covers(out, seeds) or all(seed_metrics_file(out, k).is_file() for k in range(seeds))


def summary_covers(out: Path, seeds: int) -> bool:
    summary_file = out / "summary.json"
    return summary_file.is_file() and json.loads(summary_file.read_text()).get("seeds") == seeds


def run_finetuning(plan: ComparePlan, stage: str, stages: Stages) -> dict[tuple[str, int], dict]:
    """:func:`finetune` of every run of ``stage`` in the plan, skipped when its ``summary.json``
    covers the stage's seeds. Returns the summaries by (row name, member)."""
    summaries = {}
    for run in plan.finetuning(stage):
        done = summary_covers(run.out, run.seeds)
        summaries[(run.row.name, run.row.member)] = stages.run(
            stage,
            run.row.tag,
            done,
            lambda: json.loads((run.out / "summary.json").read_text()) if done else finetune(run),
        )
    return summaries


# ---------------------------------------------------------------- entry point
def run_compare(
    cfg: CompareConfig, command: str | None = None, jobs: dict | None = None, started: float | None = None
) -> dict:
    """Resolve ``cfg`` (:func:`~.plan.resolve`: every sub-config checked before anything is written or
    run) and run it (:func:`run_plan`); returns rows, results and stage records."""
    tic = time.perf_counter() if started is None else started
    return run_plan(resolve(cfg), command, jobs, tic)


def run_plan(
    plan: ComparePlan, command: str | None = None, jobs: dict | None = None, started: float | None = None
) -> dict:
    """Run every stage of ``plan`` (skipping finished ones) and write the report (``command``, the command
    line that ran it, goes at its top); returns rows, results and stage records. ``jobs``: the
    ``{(stage, row): seconds}`` of stages that cluster jobs have run (:mod:`.dag`, which hands down the
    plan its jobs ran), ``started`` the ``time.perf_counter()`` at which this invocation began (default: now)."""
    tic = time.perf_counter() if started is None else started
    check_not_stale(plan)
    with run_lock(plan.cfg.output_dir, "comparison"):  # one writer: a second invocation on the folder stops
        return _run_stages(plan, command, jobs, tic)


def _run_stages(plan: ComparePlan, command: str | None, jobs: dict | None, tic: float) -> dict:
    cfg, out = plan.cfg, Path(plan.cfg.output_dir)
    register(cfg)  # the design, fixed by the folder's first invocation
    dump_config(cfg, out / "config.yaml")
    stages = Stages(out / "stages.json", jobs)
    run_distill(plan, stages)
    cls_results = run_cls(plan, stages) if cfg.cls.enabled else []
    if cls_results:
        cls_report.write_csv(cls_results, out / "cls" / "cls_results.csv")
        cls_report.plot_val_curves(cls_results, out / "cls" / "val_curves.png")
    det = run_finetuning(plan, "det", stages) if cfg.det.enabled else {}
    seg = run_finetuning(plan, "seg", stages) if cfg.seg.enabled else {}
    report = write_report(plan, cls_results, det, stages.records, time.perf_counter() - tic, seg, command)
    log.info("report written to %s", out / "report.md")
    return {
        "rows": [r.__dict__ for r in plan.rows],
        "stages": stages.records,
        "report": str(out / "report.md"),
        "results_csv": str(out / "results.csv"),
        **report,
    }

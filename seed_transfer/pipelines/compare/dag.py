"""The comparison as a DAG of cluster jobs (``--launcher slurm``; ``launcher.executor=local``
runs the same jobs as parallel local processes; the machinery: :mod:`seed_transfer.pipelines.jobs`):

- one job per distillation (strategy x member), all at once;
- one per (row, classification dataset), one per (row, detection seed), one per (row,
  segmentation seed), each submitted as soon as its row's distillation has finished (random
  init, pixels and the teacher at once);
- then, in this process, the sequential :func:`~.run.run_plan` of the same plan, which finds every output,
  writes the fine-tuning summaries and the report: the same ``results.csv`` as a run in one
  process.

On SLURM (``launcher.wait`` unset or false) nothing waits here: every job is submitted at once,
chained by SLURM dependencies, and the report pass is the graph's last job
(:func:`~seed_transfer.pipelines.jobs.submit_nodes`); the command returns once all are submitted, and
the same command again says where the graph stands and resubmits only what failed.

The comparison is resolved once, here (:func:`~.plan.resolve`): each job receives its node, a
part of that plan, pickled and fingerprinted (:mod:`seed_transfer.pipelines.jobs`), and the
report pass takes the same plan; no job reads the preset or resolves a config again.

Finished stages are not submitted again (the sequential run's rule), so the same command
continues an interrupted or partly failed comparison. Each stage's resources are
``jobs.<stage>`` launcher keys over the command line's (:class:`~.schema.JobsConfig`).
"""

from __future__ import annotations

import time
from dataclasses import fields, replace
from functools import partial
from pathlib import Path

from seed_core.run_lock import run_lock

from ...finetune import seed_metrics_file
from ...launch.config import LauncherConfig
from ...launch.submit import check
from ..jobs import (
    Node,
    job_seconds,
    read_records,
    run_node,
    run_nodes,
    stage_launchers,
    submit_with_report,
    write_job_config,
)
from .plan import FINETUNE_STAGES, ComparePlan, resolve
from .registration import register
from .run import check_not_stale, finetune, run_plan, student_done, summary_covers
from .schema import CompareConfig, JobsConfig

JOB_FN = "seed_transfer.pipelines.compare.dag:run_job"
STAGES = tuple(f.name for f in fields(JobsConfig))  # distill, cls, det, seg: one jobs.<stage> each


def nodes(plan: ComparePlan) -> list[Node]:
    """Every job of the comparison, in a fixed order, each running a part of ``plan`` as resolved."""
    from distill.trainer import train

    from ...classification.transfer import run_cls_transfer

    graph = []
    # member by member (seed-s4, moco-s4, seed-s5, ...): with launcher.max_jobs the strategies' k-th
    # distillations run side by side and their results complete before the next member's start
    for row, dcfg in sorted(zip(plan.students, plan.distill.values()), key=lambda pair: pair[0].member):
        graph.append(
            Node(
                f"distill {row.tag}",
                "distill",
                row.tag,
                "distill",
                (),
                lambda r=row, d=dcfg: student_done(plan, r, d),
                partial(train, dcfg, resume=True),
            )
        )

    def after(row) -> tuple[str, ...]:
        return (f"distill {row.tag}",) if row.strategy else ()

    for run in plan.cls:
        graph.append(
            Node(
                f"{run.stage} {run.row.tag}",
                run.stage,
                run.row.tag,
                "cls",
                after(run.row),
                run.result.is_file,
                partial(run_cls_transfer, run.config),
            )
        )
    for stage in FINETUNE_STAGES:
        for run in plan.finetuning(stage):
            for seed in range(run.seeds):
                graph.append(
                    Node(
                        f"{stage} {run.row.tag} seed{seed}",
                        stage,
                        run.row.tag,
                        stage,
                        after(run.row),
                        lambda r=run, k=seed: summary_covers(r.out, r.seeds) or seed_metrics_file(r.out, k).is_file(),
                        partial(finetune, run, seed=seed),
                    )
                )
    return graph


def launchers(cfg: CompareConfig, launcher: LauncherConfig) -> dict[str, LauncherConfig]:
    """Each stage's resources: its ``jobs.<stage>`` keys over ``launcher`` (the command line's)."""
    return stage_launchers({stage: getattr(cfg.jobs, stage) for stage in STAGES}, launcher)


def run_compare_dag(
    cfg: CompareConfig, launcher: LauncherConfig, command: str | None = None, poll_seconds: float = 5.0, on_event=None
) -> dict:
    """The comparison as cluster jobs (see the module docstring); returns what
    :func:`~.run.run_compare` returns. Raises a :class:`~seed_core.errors.UserError` naming every
    failed job and its log (after the independent jobs have ended; no report is written)."""
    started = time.perf_counter()
    check(launcher)  # no SLURM / submitit here: stop before anything is written or submitted
    cfg = replace(cfg, output_dir=str(Path(cfg.output_dir).expanduser().resolve()))  # jobs may start elsewhere
    plan = resolve(cfg)  # once: the jobs and the report pass run it as it is
    check_not_stale(plan)
    resources = launchers(cfg, launcher)
    with run_lock(cfg.output_dir, "comparison (its job graph)"):  # the report pass re-enters it
        register(cfg)  # the design, fixed before the first job
        write_job_config(cfg, cfg.output_dir)
        graph = nodes(plan)
        if not launcher.waits and not all(node.done() for node in graph):
            report = partial(report_job, plan, command)
            return submit_with_report(graph, report, resources, launcher, cfg.output_dir, JOB_FN)
        records = run_nodes(
            graph, resources, cfg.output_dir, JOB_FN, poll_seconds, on_event, max_jobs=launcher.max_jobs
        )
        return run_plan(plan, command, jobs=job_seconds(records), started=started)


def report_job(plan: ComparePlan, command: str | None, names: tuple[str, ...]) -> dict:
    """The last job of a chained graph: the report pass, with the seconds that the graph's jobs recorded."""
    return run_plan(plan, command, jobs=job_seconds(read_records(plan.cfg.output_dir, names)))


def run_job(argv: list[str]) -> int:
    """One job of the DAG: the node the driver resolved (:func:`~seed_transfer.pipelines.jobs.run_node`)."""
    return run_node(argv)

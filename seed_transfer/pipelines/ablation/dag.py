"""The ablation as cluster jobs (``--launcher slurm``; ``launcher.executor=local`` runs the same
jobs as parallel local processes; the machinery: :mod:`seed_transfer.pipelines.jobs`): one job
per unfinished point (its distillation, then its evaluations), all points at once, each sized by
the config's ``jobs`` launcher keys over the command line's; then, in this process,
:func:`~.run.run_ablation` writes the tables and the report from the jobs' records, as a run in
one process would (a diverged point is a failed row there too, not a failed job). On SLURM
(``launcher.wait`` unset or false) that report pass is the last job instead, submitted with the
points and held by SLURM until they have ended (:func:`~seed_transfer.pipelines.jobs.submit_nodes`),
and the command returns once everything is submitted.
"""

from __future__ import annotations

import time
from dataclasses import replace
from functools import partial
from pathlib import Path

from ...launch.config import LauncherConfig
from ...launch.submit import check
from ..jobs import (
    DAG_FOLDER,
    Node,
    read_records,
    record_file,
    run_node,
    run_nodes,
    stage_launchers,
    submit_with_report,
    write_job_config,
)
from ..stages import Stages
from .run import AblationPlan, ablation_lock, point_done, prepare, run_ablation, run_point_or_fail
from .schema import AblationConfig, Point

JOB_FN = "seed_transfer.pipelines.ablation.dag:run_job"


def run_point_job(cfg: AblationConfig, point: Point, evals: list, folder: Path) -> dict:
    """One point's job: its distillation and evaluations as resolved (``evals``), with its stage records."""
    stages = Stages(record_file(folder, f"stages {point.name}"))
    record = run_point_or_fail(cfg, point, stages, evals)
    return {"record": record, "stages": stages.records}


def nodes(plan: AblationPlan) -> list[Node]:
    """One job per point of the plan's grid, none depending on another."""
    cfg, evals = plan.cfg, plan.evals
    folder = Path(cfg.output_dir) / DAG_FOLDER
    return [
        Node(
            f"point {p.name}",
            "point",
            p.name,
            "point",
            (),
            lambda p=p: point_done(cfg, p, evals[p.name]),
            partial(run_point_job, cfg, p, evals[p.name], folder),
            keep_result=True,
        )
        for p in plan.grid.points
    ]


def run_ablation_dag(
    cfg: AblationConfig, launcher: LauncherConfig, poll_seconds: float = 5.0, on_event=None, job_fn: str = JOB_FN
) -> dict:
    """Every unfinished point as a job, then the report; returns what :func:`~.run.run_ablation` returns.
    ``job_fn``: what each job runs (a test's wrapper of :func:`run_job` that registers its models)."""
    started = time.perf_counter()
    check(launcher)  # no SLURM / submitit here: stop before anything is written or submitted
    cfg = replace(cfg, output_dir=str(Path(cfg.output_dir).expanduser().resolve()))  # jobs may start elsewhere
    with ablation_lock(cfg, "ablation (its job graph)"):  # the report pass re-enters it
        plan = prepare(cfg)  # every point resolved, stale outputs refused: once, the jobs run it as it is
        graph = nodes(plan)
        resources = stage_launchers({"point": cfg.jobs}, launcher)
        write_job_config(cfg, cfg.output_dir)
        if not launcher.waits and not all(node.done() for node in graph):
            report = partial(report_job, cfg, plan)
            return submit_with_report(graph, report, resources, launcher, cfg.output_dir, job_fn)
        records = run_nodes(
            graph, resources, cfg.output_dir, job_fn, poll_seconds, on_event, max_jobs=launcher.max_jobs
        )
        return run_ablation(cfg, jobs={r["row"]: r["result"] for r in records.values()}, started=started, plan=plan)


def report_job(cfg: AblationConfig, plan: AblationPlan, names: tuple[str, ...]) -> dict:
    """The last job of a chained graph: the report pass, from the records that the points' jobs wrote."""
    records = read_records(cfg.output_dir, names).values()
    return run_ablation(cfg, jobs={r["row"]: r["result"] for r in records}, plan=plan)


def run_job(argv: list[str]) -> int:
    """One point's job: the node the driver resolved (:func:`~seed_transfer.pipelines.jobs.run_node`)."""
    return run_node(argv)

"""Jobs that wait on each other: a pipeline's stages as one submitit job each, submitted as soon
as the jobs they depend on have finished, so independent stages run in parallel (on SLURM, or
as local processes with ``launcher.executor=local``).

    outcomes = run_dag([Job("distill seed", fn, argv, launcher=big),
                        Job("det seed seed0", fn, argv, deps=("distill seed",), launcher=small)],
                       output_dir)

Each job is a :class:`~seed_transfer.launch.job.CommandJob` (requeued with ``--resume`` on
preemption, as a single submitted tool is). A job that fails is reported by name with its log;
the jobs that depend on it are not submitted; every independent job still runs to its end.
The waiting is submitit's futures, polled here (``job.done()``): no scheduler of our own.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

from seed_core.config import ConfigError

from .config import LauncherConfig
from .submit import check, submit

log = logging.getLogger(__name__)
POLL_SECONDS = 5.0


@dataclass(frozen=True)
class Job:
    name: str  # unique within the DAG, e.g. "distill seed-s1"
    fn: str  # "package.module:function", run as fn(argv) in the job
    argv: tuple[str, ...]
    deps: tuple[str, ...] = ()  # names of jobs of the same DAG that must finish first
    launcher: LauncherConfig | None = None  # its resources (launcher: slurm); None: the DAG's default


@dataclass
class Outcome:
    name: str
    status: str  # "done" | "failed" | "not run" (a job it depends on failed)
    log: str | None = None  # stderr of the job (task 0)
    error: str = ""
    job_id: str | None = None


def check_dag(jobs: list[Job], elsewhere: frozenset[str] = frozenset()) -> None:
    """Unique names, known dependencies, no cycle: checked before anything is submitted. ``elsewhere``:
    names of jobs that the graph may depend on without holding them (queued by an earlier submission)."""
    names = [job.name for job in jobs]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ConfigError(f"jobs named twice: {', '.join(twice)}")
    known = set(names) | set(elsewhere)
    for job in jobs:
        unknown = [d for d in job.deps if d not in known]
        if unknown:
            raise ConfigError(f"job {job.name!r} depends on unknown jobs: {', '.join(unknown)}")
    by_name, state = {job.name: job for job in jobs}, {}

    def visit(name: str, path: tuple[str, ...]) -> None:
        if state.get(name) == "done":
            return
        if name in path:
            raise ConfigError(f"jobs depend on each other in a cycle: {' -> '.join([*path, name])}")
        for dep in by_name[name].deps:
            if dep in by_name:  # not a job queued elsewhere, which cannot depend back on this graph
                visit(dep, (*path, name))
        state[name] = "done"

    for job in jobs:
        visit(job.name, ())


def _in_order(jobs: list[Job]) -> list[Job]:
    """``jobs`` with every job after the jobs of the list it depends on (their order kept otherwise)."""
    by_name, placed, order = {job.name: job for job in jobs}, set(), []

    def place(job: Job) -> None:
        if job.name in placed:
            return
        for dep in job.deps:
            if dep in by_name:
                place(by_name[dep])
        placed.add(job.name)
        order.append(job)

    for job in jobs:
        place(job)
    return order


def submit_chained(jobs: list[Job], output_dir: str | Path, queued: dict[str, str] | None = None) -> dict[str, str]:
    """Submit every job of ``jobs`` now, each held by SLURM until the jobs it depends on have ended
    well (``--dependency=afterok``, with ``--kill-on-invalid-dep=yes``: a job whose dependency failed
    is cancelled, not left pending), so that the graph needs no process of ours while it runs.
    ``queued``: ``{name: job id}`` of jobs still in SLURM's queue from an earlier submission, which
    jobs here may depend on. Returns ``{name: job id}`` of the submitted jobs."""
    queued = dict(queued or {})
    check_dag(jobs, frozenset(queued))
    for job in jobs:
        if job.launcher is None or job.launcher.launcher != "slurm" or job.launcher.executor != "slurm":
            raise ConfigError(f"job {job.name!r}: a chained graph needs launcher: slurm with launcher.executor=slurm")
        check(job.launcher)
    ids = {}
    for job in _in_order(jobs):
        after = [{**queued, **ids}[dep] for dep in job.deps]
        ids[job.name] = str(submit(job.fn, list(job.argv), job.launcher, output_dir, after=after).job_id)
    return ids


def _last_line(err: BaseException) -> str:
    lines = [line.strip() for line in str(err).strip().splitlines() if line.strip()]
    return lines[-1] if lines else type(err).__name__


def run_dag(
    jobs: list[Job],
    output_dir: str | Path,
    launcher: LauncherConfig | None = None,
    poll_seconds: float = POLL_SECONDS,
    on_event=None,
    max_jobs: int | None = None,
) -> list[Outcome]:
    """Submit every job of ``jobs`` once its dependencies are done, wait for all, and return one
    :class:`Outcome` per job (in ``jobs``' order). Every job's launcher is checked first
    (:func:`~seed_transfer.launch.submit.check`: no SLURM, no submitit -> nothing is submitted).
    ``on_event(kind, name)`` (``"submitted"``, ``"done"``, ``"failed"``, ``"not run"``) sees the order of things.
    ``max_jobs``: at most this many submitted and not finished at once; the ready ones wait in
    ``jobs``' order, those that continue finished work (with dependencies) before new roots, so that
    a stopped run leaves whole branches (a member's results), not many half-done ones."""
    check_dag(jobs)
    for job in jobs:
        resources = job.launcher or launcher
        if resources is None or resources.launcher != "slurm":
            raise ConfigError(
                f"job {job.name!r}: a DAG of jobs needs launcher: slurm (with launcher.executor="
                "slurm or local); run the pipeline without --launcher to run it in this process"
            )
        check(resources)
    notify = on_event or (lambda kind, name: None)
    pending, running, outcomes = {job.name: job for job in jobs}, {}, {}
    while pending or running:
        progressed = False
        for name, job in sorted(pending.items(), key=lambda item: not item[1].deps):  # stable: depth first
            blocked = [d for d in job.deps if d in outcomes and outcomes[d].status != "done"]
            if blocked:
                why = f"it depends on {', '.join(blocked)}, which did not finish"
                outcomes[name] = Outcome(name, "not run", error=why)
            elif all(d in outcomes for d in job.deps):
                if max_jobs is not None and len(running) >= max_jobs:
                    continue
                running[name] = submit(job.fn, list(job.argv), job.launcher or launcher, output_dir)
            else:
                continue
            del pending[name]
            notify("submitted" if name in running else "not run", name)
            progressed = True
        for name, handle in list(running.items()):
            if not handle.done():
                continue
            del running[name]
            progressed = True
            try:
                handle.result()
                outcomes[name] = Outcome(name, "done", str(handle.paths.stderr), job_id=str(handle.job_id))
            except Exception as err:  # the job's own failure, whatever it was: reported, the rest goes on
                outcomes[name] = Outcome(name, "failed", str(handle.paths.stderr), _last_line(err), str(handle.job_id))
                log.error(
                    "job %s (%s) failed: %s; log: %s", name, handle.job_id, outcomes[name].error, handle.paths.stderr
                )
            notify(outcomes[name].status, name)
        if not progressed:
            time.sleep(poll_seconds)
    return [outcomes[job.name] for job in jobs]


def failure_report(outcomes: list[Outcome]) -> str:
    """One line per job that failed (with its log) or was not run; empty when all are done."""
    lines = [f"{o.name}: failed ({o.error}); log: {o.log}" for o in outcomes if o.status == "failed"]
    lines += [f"{o.name}: not run ({o.error})" for o in outcomes if o.status == "not run"]
    return "; ".join(lines)

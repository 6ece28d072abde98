"""A pipeline's stages as cluster jobs, shared by the comparison and the ablation (``--launcher
slurm``; ``launcher.executor=local`` runs the same jobs as parallel local processes).

A pipeline describes its stages as :class:`Node` s (what each makes, what it needs first), built
from its resolved plan; :func:`run_nodes` submits the unfinished ones through
:func:`seed_transfer.launch.dag.run_dag` and waits. A job receives its node as the driver resolved
it: pickled to ``<output_dir>/dag/node_<name>.pkl`` (its ``run``, a function with the resolved
configs it needs), with the fingerprint of those bytes on its command line. :func:`run_node`
checks the fingerprint (a node rewritten by a later invocation with other settings is refused),
runs the node, and records its seconds (and, for nodes that ask, its return value) in
``<output_dir>/dag/job_<name>.json``, which the driver reads back for the report. No job reads the
pipeline's config or resolves anything again.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import pickle
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from functools import partial
from pathlib import Path

import torch

from seed_core.atomic import atomic_save
from seed_core.config import ConfigError, dump_config, from_dict
from seed_core.errors import UserError

from ..finetune import json_safe
from ..launch.config import LauncherConfig
from ..launch.dag import Job, failure_report, run_dag, submit_chained
from ..launch.submit import SUBMITIT_FOLDER

log = logging.getLogger(__name__)
DAG_FOLDER = "dag"  # <output_dir>/dag: the config the graph came from, each job's node and record
CONFIG_NAME = "config.yaml"
JOB_IDS = "job_ids.json"  # <output_dir>/dag/job_ids.json: {node name: SLURM job id} of a chained graph


@dataclass(frozen=True)
class Node:
    """One job: ``run()`` makes the outputs that ``done()`` finds. ``run`` travels to the job pickled
    (:func:`write_node`): a module-level function with its resolved arguments (``functools.partial``),
    not a closure; ``done`` is asked in the driver only."""

    name: str  # unique, e.g. "distill seed-s1", "det seed seed0"
    stage: str  # the stage record it counts towards (stages.Stages): "distill", "cls digits", "det", ...
    row: str  # the row (point) it belongs to
    resources: str  # which jobs.<section> sizes it
    deps: tuple[str, ...]
    done: Callable[[], bool] | None
    run: Callable[[], object]
    keep_result: bool = False  # record run()'s return value for the driver


def stage_launchers(sections: dict[str, dict], launcher: LauncherConfig) -> dict[str, LauncherConfig]:
    """Each ``jobs.<section>``'s launcher keys over ``launcher``, checked (a bad value names its key)."""
    out = {}
    for section, keys in sections.items():
        stage_cfg = from_dict(LauncherConfig, {**asdict(launcher), **keys}, prefix=f"jobs.{section}.")
        try:
            stage_cfg.validate()
        except ConfigError as err:
            raise ConfigError(f"jobs.{section}: {err}") from None
        out[section] = stage_cfg
    return out


def _safe(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name)


def record_file(folder: Path, name: str) -> Path:
    return folder / f"job_{_safe(name)}.json"


def write_job_config(cfg, output_dir: str | Path) -> Path:
    """The pipeline's config that the job graph was resolved from, for a reader: ``<output_dir>/dag/config.yaml``
    (the jobs read their nodes, :func:`write_node`)."""
    path = Path(output_dir) / DAG_FOLDER / CONFIG_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    dump_config(cfg, path)
    return path


def node_file(folder: Path, name: str) -> Path:
    return folder / f"node_{_safe(name)}.pkl"


def write_node(folder: Path, node: Node) -> tuple[Path, str]:
    """``node`` as its job receives it (without ``done``, which the driver alone asks), pickled to
    ``<folder>/node_<name>.pkl``; returns that file and its fingerprint (the SHA-256 of its bytes)."""
    payload = pickle.dumps(replace(node, done=None))
    path = node_file(folder, node.name)
    atomic_save(payload, path, dump=lambda obj, f: f.write(obj))
    return path, hashlib.sha256(payload).hexdigest()


def read_node(path: str | Path, fingerprint: str) -> Node:
    """The node that :func:`write_node` wrote to ``path``, once its bytes are checked against
    ``fingerprint`` (before anything is unpickled)."""
    payload = Path(path).read_bytes()
    found = hashlib.sha256(payload).hexdigest()
    if found != fingerprint:
        raise ConfigError(
            f"{path} is not the node this job was submitted with (fingerprint {found[:12]}, expected "
            f"{fingerprint[:12]}): the pipeline was started again on its output_dir with other settings while "
            "this job waited; run that command again (finished stages are skipped)"
        )
    return pickle.loads(payload)


def node_job(
    node: Node, names: set[str], launchers: dict[str, LauncherConfig], output_dir: str | Path, job_fn: str
) -> Job:
    """The job of ``node``: its node written for it (:func:`write_node`), its resources, and its
    dependencies among ``names`` (the nodes of this submission)."""
    path, fingerprint = write_node(Path(output_dir) / DAG_FOLDER, node)
    launcher = launchers[node.resources]
    return Job(
        node.name,
        job_fn,
        ("--node", str(path), "--fingerprint", fingerprint),
        tuple(d for d in node.deps if d in names),
        replace(launcher, job_name=launcher.job_name or f"{Path(output_dir).name}:{node.name}"),
    )


def run_nodes(
    graph: list[Node],
    launchers: dict[str, LauncherConfig],
    output_dir: str | Path,
    job_fn: str,
    poll_seconds: float = 5.0,
    on_event=None,
    max_jobs: int | None = None,
) -> dict[str, dict]:
    """Submit every node of ``graph`` that is not done as a job (``job_fn(["--node",
    <output_dir>/dag/node_<name>.pkl, "--fingerprint", <sha256>])``, written by :func:`write_node`), each
    as soon as the nodes it depends on are done, and wait for all. Returns the records of the jobs
    that ran, by node name. Raises a :class:`~seed_core.errors.UserError` naming every failed job
    with its log (once the independent jobs have ended). ``max_jobs``: see :func:`run_dag`."""
    folder = Path(output_dir) / DAG_FOLDER
    todo = [node for node in graph if not node.done()]
    names = {node.name for node in todo}
    jobs = [node_job(node, names, launchers, output_dir, job_fn) for node in todo]
    log.info("%d of %d jobs to run (%d done already)", len(jobs), len(graph), len(graph) - len(jobs))
    outcomes = run_dag(jobs, output_dir, poll_seconds=poll_seconds, on_event=on_event, max_jobs=max_jobs)
    failed = failure_report(outcomes)
    if failed:
        raise UserError(
            f"{sum(o.status != 'done' for o in outcomes)} of {len(outcomes)} jobs did not finish: "
            f"{failed}. Fix the cause and run the same command again: finished stages are skipped"
        )
    return {name: json.loads(record_file(folder, name).read_text()) for name in sorted(names)}  # each job wrote one


def read_records(output_dir: str | Path, names) -> dict[str, dict]:
    """The records (:func:`run_node`) of the nodes ``names`` whose jobs wrote one, by node name."""
    files = {name: record_file(Path(output_dir) / DAG_FOLDER, name) for name in names}
    return {name: json.loads(file.read_text()) for name, file in files.items() if file.is_file()}


def submit_with_report(
    graph: list[Node], report: Callable[[tuple[str, ...]], object], resources: dict, launcher, output_dir, job_fn
) -> dict:
    """:func:`submit_nodes` with ``report(names of the graph's nodes)`` as the last job, sized by the
    command line's ``launcher``; returns ``{"chained": what happened, "report": <output_dir>/report.md}``."""
    names = tuple(node.name for node in graph)
    last = Node("report", "report", "", "report", (), None, partial(report, names))
    outcome = submit_nodes(graph, last, {**resources, "report": launcher}, output_dir, job_fn)
    return {"chained": outcome, "report": str(Path(output_dir) / "report.md")}


def queue_states() -> dict[str, str]:
    """``{job id: state}`` of every job in SLURM's queue (``squeue``: PENDING, RUNNING, REQUEUED, ...)."""
    import subprocess

    done = subprocess.run(["squeue", "--noheader", "--format=%i %T"], capture_output=True, text=True)
    if done.returncode != 0:
        raise UserError(f"squeue failed ({done.stderr.strip() or done.returncode}): is SLURM reachable from here?")
    return dict(line.split(maxsplit=1) for line in done.stdout.splitlines() if line.strip())


def submit_nodes(
    graph: list[Node], last: Node, launchers: dict[str, LauncherConfig], output_dir: str | Path, job_fn: str
) -> dict[str, list[str]]:
    """Submit the unfinished nodes of ``graph`` and then ``last`` (the report: it depends on all of them)
    at once, chained by SLURM dependencies (:func:`~seed_transfer.launch.dag.submit_chained`), and return
    without waiting. The job ids go to ``<output_dir>/dag/job_ids.json``; a node whose recorded job is
    still in SLURM's queue is not submitted again (unless a node it depends on is), so the same command
    run again says where the graph stands and submits only what failed or was cancelled, with the nodes
    that depend on it. Returns the node names by what happened: ``done``, ``queued`` (waited on),
    ``submitted``, ``resubmitted`` (its earlier job ended without its outputs)."""
    folder = Path(output_dir) / DAG_FOLDER
    ids_file = folder / JOB_IDS
    recorded = json.loads(ids_file.read_text()) if ids_file.is_file() else {}
    todo = [node for node in graph if not node.done()]
    todo.append(replace(last, deps=tuple(node.name for node in todo)))
    states = queue_states() if recorded else {}
    queued, names = {}, {node.name for node in todo}
    for node in todo:  # in dependency order (the graph lists a node after its dependencies)
        job_id = recorded.get(node.name)
        if job_id in states and all(dep in queued or dep not in names for dep in node.deps):
            queued[node.name] = job_id
    for node in todo:
        job_id = recorded.get(node.name)
        if job_id is not None and job_id not in states:  # left the queue without making its outputs
            log.warning(
                "%s: its job %s ended without its outputs (it failed, was cancelled, or a job it needed did): "
                "submitted again; its log: %s",
                node.name,
                job_id,
                Path(output_dir) / SUBMITIT_FOLDER / f"{job_id}_0_log.err",
            )
    held = [recorded[name] for name in recorded if name in names and name not in queued and recorded[name] in states]
    if held:  # queued behind a node that is submitted again: its afterok can never be met
        import subprocess

        subprocess.run(["scancel", *held], check=False)
    jobs = [node_job(node, names, launchers, output_dir, job_fn) for node in todo if node.name not in queued]
    submitted = submit_chained(jobs, output_dir, queued)
    atomic_save(json.dumps({**recorded, **submitted}, indent=1), ids_file, dump=lambda t, f: f.write(t.encode()))
    outcome = {"done": [n.name for n in graph if n.name not in names], "queued": sorted(queued)}
    outcome["resubmitted"] = sorted(n for n in submitted if n in recorded)
    outcome["submitted"] = sorted(n for n in submitted if n not in recorded)
    for what, node_names in outcome.items():
        if node_names:
            log.info("%s: %d job(s): %s", what, len(node_names), ", ".join(node_names))
    return outcome


def job_seconds(records: dict[str, dict]) -> dict[tuple[str, str], float]:
    """``{(stage, row): seconds}`` of the jobs' records, summed per stage and row (a row's seeds add up)."""
    seconds = {}
    for record in records.values():
        key = (record["stage"], record["row"])
        seconds[key] = seconds.get(key, 0.0) + record["seconds"]
    return seconds


def run_node(argv: list[str]) -> int:
    """One job: ``--node <output_dir>/dag/node_<name>.pkl --fingerprint <sha256> [--resume]`` (a requeue
    adds ``--resume``; every stage resumes anyway): the node the driver resolved (:func:`read_node`), run."""
    parser = argparse.ArgumentParser(prog="pipeline job")
    parser.add_argument("--node")
    parser.add_argument("--fingerprint")
    parser.add_argument("--resume", action="store_true")
    args = parser.parse_args(argv)
    if not (args.node and args.fingerprint):
        parser.error("--node and --fingerprint are required (the driver writes them, run_nodes)")
    node, folder = read_node(args.node, args.fingerprint), Path(args.node).parent
    tic = time.perf_counter()
    value = node.run()
    if int(os.environ.get("RANK", 0)):  # one record per job, from its first task
        return 0
    record = {"stage": node.stage, "row": node.row, "job": node.name, "seconds": round(time.perf_counter() - tic, 2)}
    record["torch_threads"] = torch.get_num_threads()  # a job's results depend on it (launcher.cpus_per_task)
    if node.keep_result:
        record["result"] = json_safe(value)
    record_file(folder, node.name).write_text(json.dumps(record) + "\n")
    return 0

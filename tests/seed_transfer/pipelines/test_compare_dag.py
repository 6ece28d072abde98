"""The comparison as a DAG of jobs on submitit's local executor (real processes): the golden
preset's stages run as parallel jobs and the report and results.csv are the sequential run's,
byte for byte; a second invocation submits nothing; a config that cannot launch fails up front."""

import json
import sys
from pathlib import Path

import pytest
import torch

from seed_core.config import ConfigError, load_config
from seed_core.errors import UserError
from seed_transfer.launch import load_launcher_config
from seed_transfer.pipelines.compare import CompareConfig, run_compare
from seed_transfer.pipelines.compare.dag import launchers, nodes, run_compare_dag
from seed_transfer.pipelines.compare.plan import resolve

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "golden"))
from golden import PRESET  # noqa: E402

LOCAL = ["executor=local", "cpus_per_task=1", "time_min=30", "max_requeues=0"]


def golden_config(out: Path, datasets: Path, *overrides) -> CompareConfig:
    return load_config(CompareConfig, PRESET, [f"output_dir={out}", f"det.data_root={datasets}", *overrides])


def test_the_dag_has_one_job_per_distillation_row_dataset_and_fine_tuning_seed(tmp_path):
    cfg = golden_config(tmp_path / "cmp", tmp_path / "data")
    graph = {node.name: node for node in nodes(resolve(cfg))}
    distills = [n for n in graph if n.startswith("distill ")]
    # member by member: the strategies' k-th distillations side by side, then member k + 1
    assert distills == ["distill seed", "distill moco", "distill seed-s1", "distill moco-s1"]
    # 4 students + 2 random members + pixels + teacher, on one dataset
    assert sum(n.startswith("cls ") for n in graph) == 8
    assert graph["cls digits seed-s1"].deps == ("distill seed-s1",)
    assert graph["cls digits random-s1"].deps == ()
    # detection: the 4 students, the 2 random members, the teacher; 2 seeds each; no pixel row
    dets = [n for n in graph if n.startswith("det ")]
    assert len(dets) == 7 * 2 and "det random-s1 seed1" in dets and not any("pixels" in n for n in dets)
    assert graph["det moco seed1"].deps == ("distill moco",)
    assert not any(node.done() for node in graph.values())


def test_each_job_receives_its_part_of_the_plan_as_the_driver_resolved_it(tmp_path):
    from seed_transfer.pipelines.compare.run import finetune
    from seed_transfer.pipelines.jobs import read_node, write_node

    cfg = golden_config(tmp_path / "cmp", tmp_path / "data")
    plan = resolve(cfg)
    graph = {node.name: node for node in nodes(plan)}
    (det,) = [run for run in plan.det if run.row.tag == "random-s1"]
    job = read_node(*write_node(tmp_path / "dag", graph["det random-s1 seed1"])).run
    assert job.func is finetune and job.args == (det,) and job.keywords == {"seed": 1}
    assert job.args[0].plan == det.plan and det.plan.request.seed_offset == 1000  # engine, norms, schedule, seeds
    (cls,) = [run for run in plan.cls if run.row.tag == "seed-s1"]
    job = read_node(*write_node(tmp_path / "dag", graph["cls digits seed-s1"])).run
    assert job.args == (cls.config,)
    job = read_node(*write_node(tmp_path / "dag", graph["distill moco-s1"])).run
    assert job.args == (plan.distill["moco", 1],) and job.keywords == {"resume": True}


def test_each_stage_gets_its_own_resources_and_a_bad_key_is_named(tmp_path):
    cfg = golden_config(
        tmp_path / "cmp",
        tmp_path / "data",
        "jobs.distill={gpus_per_node: 8, time_min: 600}",
        "jobs.det={gpus_per_node: 1}",
    )
    resources = launchers(cfg, load_launcher_config("slurm", ["gpus_per_node=2", "partition=p"]))
    assert (resources["distill"].gpus_per_node, resources["distill"].time_min) == (8, 600)
    assert resources["det"].gpus_per_node == 1 and resources["cls"].gpus_per_node == 2
    assert {launcher.partition for launcher in resources.values()} == {"p"}
    with pytest.raises(ConfigError, match=r"jobs.det: unknown launcher keys \['gpus'\]"):
        golden_config(tmp_path / "cmp", tmp_path / "data", "jobs.det={gpus: 1}")
    with pytest.raises(ConfigError, match=r"jobs.distill.*gpus_per_node must be at least 1 \(or null\), got 0"):
        launchers(
            golden_config(tmp_path / "cmp", tmp_path / "data", "jobs.distill={gpus_per_node: 0}"),
            load_launcher_config("slurm", LOCAL),
        )


def test_without_slurm_the_dag_fails_up_front_and_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))  # no sbatch
    out = tmp_path / "cmp"
    with pytest.raises(UserError, match="no sbatch on PATH"):
        run_compare_dag(golden_config(out, tmp_path / "data"), load_launcher_config("slurm"))
    assert not out.exists()


# The golden preset cut to one distillation (SEED), random init and two detection seeds: 7 jobs,
# 3 of them free to start at once, and a sequential run to compare with, in about a minute.
SMALL_DAG = ["distill.strategies=[seed]", "distill.seeds=1", "rows.pixels=false", "rows.teacher=null"]


def _report(out: Path) -> list[str]:
    """report.md without what differs between invocations (timings, the stage table, hardware)."""
    text = (out / "report.md").read_text().replace(str(out), "<output_dir>")
    return [
        line
        for line in text.splitlines()
        if not line.startswith(
            ("- **Compute time**", "- **Hardware**", "- **Design fixed", "| distill", "| cls", "| det")
        )
    ]


@pytest.mark.slow
def test_the_dag_on_local_processes_runs_stages_in_parallel_and_writes_the_sequential_report(tmp_path, monkeypatch):
    import seed_transfer.pipelines.compare.dag as dag
    import seed_transfer.pipelines.compare.run as run

    sequential, out, events = tmp_path / "sequential", tmp_path / "dag", []
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the jobs run (launcher.cpus_per_task=1): the same arithmetic
    try:
        run_compare(golden_config(sequential, tmp_path / "datasets", *SMALL_DAG), command="compare")
    finally:
        torch.set_num_threads(threads)
    cfg = golden_config(out, tmp_path / "datasets", *SMALL_DAG)
    resolved = []  # the driver resolves the comparison once; the jobs and the report pass take that plan
    monkeypatch.setattr(dag, "resolve", lambda c: resolved.append(c) or resolve(c))
    monkeypatch.setattr(run, "resolve", lambda c: pytest.fail("the report pass resolved the comparison again"))
    result = run_compare_dag(
        cfg,
        load_launcher_config("slurm", LOCAL),
        command="compare",
        poll_seconds=0.2,
        on_event=lambda kind, name: events.append((kind, name)),
    )
    assert (out / "results.csv").read_text().replace(str(out), "<output_dir>") == (
        sequential / "results.csv"
    ).read_text().replace(str(sequential), "<output_dir>")
    assert _report(out) == _report(sequential)
    assert len(resolved) == 1 and len(list((out / "dag").glob("node_*.pkl"))) == 7  # each job's node, as resolved

    # the jobs without a dependency were all submitted before the first one ended: they ran side
    # by side; the student's jobs waited for its distillation
    first_end = next(i for i, (kind, _) in enumerate(events) if kind != "submitted")
    assert {name for _, name in events[:first_end]} == {
        "distill seed",
        "cls digits random",
        "det random seed0",
        "det random seed1",
    }
    assert [kind for kind, _ in events].count("done") == len(nodes(resolve(cfg))) == 7
    assert {s["status"] for s in result["stages"]} == {"ran as jobs"}
    assert "run as cluster jobs" in (out / "report.md").read_text()
    assert len(list((out / "submitit").glob("*_log.err"))) == 7
    records = [json.loads(f.read_text()) for f in (out / "dag").glob("job_*.json")]
    assert len(records) == 7 and {r["torch_threads"] for r in records} == {1}  # launcher.cpus_per_task

    events.clear()  # everything is done: nothing is submitted, the same results come out
    run_compare_dag(
        cfg,
        load_launcher_config("slurm", LOCAL),
        poll_seconds=0.2,
        on_event=lambda kind, name: events.append((kind, name)),
    )
    assert events == []
    assert (out / "results.csv").read_text().replace(str(out), "<output_dir>") == (
        sequential / "results.csv"
    ).read_text().replace(str(sequential), "<output_dir>")

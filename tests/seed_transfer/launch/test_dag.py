"""Jobs that wait on each other (seed_transfer.launch.dag) on submitit's local executor: a job
starts after its dependencies, a failed job is named with its log, its dependents are not run,
and the independent jobs still finish; bad graphs are refused before anything is submitted."""

import os
from pathlib import Path

import pytest

from seed_core.config import ConfigError
from seed_transfer.cli.compare import main as compare_main
from seed_transfer.launch import load_launcher_config
from seed_transfer.launch.config import check_launcher_keys
from seed_transfer.launch.dag import Job, check_dag, failure_report, run_dag

HERE = Path(__file__).parent
LOCAL = load_launcher_config("slurm", ["executor=local", "cpus_per_task=1", "time_min=10", "max_requeues=0"])


@pytest.fixture(autouse=True)
def importable_in_jobs(monkeypatch):
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(p for p in (str(HERE), os.environ.get("PYTHONPATH", "")) if p))


@pytest.mark.slow
def test_a_failed_job_is_named_its_dependents_wait_and_the_independent_jobs_finish(tmp_path):
    a, b, c = (str(tmp_path / name) for name in "abc")
    jobs = [
        Job("first", "dag_jobs:touch", (a,)),
        Job("after first", "dag_jobs:touch", (b, a), deps=("first",)),
        Job("broken", "dag_jobs:fail", ()),
        Job("after broken", "dag_jobs:touch", (c,), deps=("broken",)),
    ]
    events = []
    outcomes = run_dag(jobs, tmp_path, LOCAL, poll_seconds=0.1, on_event=lambda kind, name: events.append((kind, name)))
    assert [(o.name, o.status) for o in outcomes] == [
        ("first", "done"),
        ("after first", "done"),
        ("broken", "failed"),
        ("after broken", "not run"),
    ]
    assert Path(a).is_file() and Path(b).is_file() and not Path(c).exists()
    assert events[:2] == [("submitted", "first"), ("submitted", "broken")]  # both at once
    assert events.index(("submitted", "after first")) > events.index(("done", "first"))
    broken = outcomes[2]
    assert "this job fails on purpose" in Path(broken.log).read_text()
    assert Path(broken.log).parent == tmp_path / "submitit"
    report = failure_report(outcomes)
    assert "broken: failed (" in report and f"log: {broken.log}" in report
    assert "after broken: not run (it depends on broken, which did not finish)" in report


@pytest.mark.parametrize(
    "jobs, message",
    [
        ([Job("a", "m:f", ()), Job("a", "m:f", ())], "jobs named twice: a"),
        ([Job("a", "m:f", (), deps=("b",))], "depends on unknown jobs: b"),
        ([Job("a", "m:f", (), deps=("b",)), Job("b", "m:f", (), deps=("a",))], "cycle: a -> b -> a"),
    ],
)
def test_bad_graphs_are_refused(jobs, message):
    with pytest.raises(ConfigError, match=message):
        check_dag(jobs)


def test_a_dag_needs_the_slurm_launcher(tmp_path):
    with pytest.raises(ConfigError, match="a DAG of jobs needs launcher: slurm"):
        run_dag([Job("a", "dag_jobs:touch", (str(tmp_path / "a"),))], tmp_path, load_launcher_config("local"))
    assert not (tmp_path / "a").exists()


def test_compare_with_slurm_and_no_sbatch_is_one_line_and_submits_nothing(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    status = compare_main(
        ["--config", "configs/compare/demo.yaml", f"output_dir={tmp_path / 'cmp'}", "--launcher", "slurm"]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2 and err[-1].startswith("error: launcher: slurm needs SLURM, and this machine has no sbatch")
    assert not (tmp_path / "cmp").exists()


@pytest.mark.slow
def test_max_jobs_holds_ready_jobs_back_in_order(tmp_path):
    jobs = [Job(name, "dag_jobs:touch", (str(tmp_path / name),)) for name in ("a", "b", "c")]
    events = []
    outcomes = run_dag(jobs, tmp_path, LOCAL, poll_seconds=0.1, on_event=lambda *e: events.append(e), max_jobs=1)
    assert [o.status for o in outcomes] == ["done"] * 3
    # independent and all ready at once, yet one at a time: each submitted after the one before ended
    assert events == [(kind, name) for name in "abc" for kind in ("submitted", "done")]


def test_max_jobs_continues_finished_work_before_new_roots(tmp_path):
    # two roots then a job after the first: with one slot it runs right after its root, so a run
    # stopped half-way leaves whole branches (a member's distillation and its results)
    path = lambda name: str(tmp_path / name)  # noqa: E731
    jobs = [
        Job("root a", "dag_jobs:touch", (path("a"),)),
        Job("root b", "dag_jobs:touch", (path("b"),)),
        Job("after a", "dag_jobs:touch", (path("c"), path("a")), deps=("root a",)),
    ]
    events = []
    run_dag(
        jobs, tmp_path, LOCAL, poll_seconds=0.1, on_event=lambda kind, name: events.append((kind, name)), max_jobs=1
    )
    assert [name for kind, name in events if kind == "submitted"] == ["root a", "after a", "root b"]


def test_max_jobs_is_checked_and_is_the_whole_dags():
    with pytest.raises(ConfigError, match="launcher.max_jobs must be at least 1"):
        load_launcher_config("slurm", ["max_jobs=0"])
    assert load_launcher_config("slurm", ["max_jobs=2"]).max_jobs == 2
    with pytest.raises(ConfigError, match=r"jobs.det: max_jobs is the whole DAG's.*launcher.max_jobs=N"):
        check_launcher_keys({"max_jobs": 2}, "jobs.det")


def test_a_chained_submission_refuses_a_dependency_on_an_unknown_job_and_a_local_executor():
    from seed_transfer.launch.dag import submit_chained

    slurm = load_launcher_config("slurm", [])
    with pytest.raises(ConfigError, match="depends on unknown jobs: b"):
        submit_chained([Job("a", "dag_jobs:touch", ("x",), deps=("b",), launcher=slurm)], "/nonexistent")
    local = load_launcher_config("slurm", ["executor=local"])
    with pytest.raises(ConfigError, match="a chained graph needs launcher: slurm with launcher.executor=slurm"):
        submit_chained([Job("a", "dag_jobs:touch", ("x",), deps=("b",), launcher=local)], "/x", queued={"b": "7"})

"""Against a live SLURM cluster (``bash tools/slurm_cluster.sh start``: slurmctld + slurmd on this
machine, partitions ``low`` and ``high``): real ``sbatch``, real preemption and time-limit signals,
real requeues. Marked ``slurm``; without a cluster they skip with one line saying how to start it,
except where ``SEED_REQUIRE_SLURM=1`` (``.ci/run`` sets it after starting the cluster), where they fail.
"""

import logging
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from seed_core.checkpoint_files import safe_load
from seed_transfer.launch import load_launcher_config, submit

HERE = Path(__file__).parent
REPO = HERE.parents[2]
pytestmark = pytest.mark.slurm
THREADS = f"cpus_per_task={torch.get_num_threads()}"  # the direct run's thread count: the same arithmetic


def _conf() -> str | None:
    if os.environ.get("SLURM_CONF"):
        return os.environ["SLURM_CONF"]
    conf = Path(os.environ.get("SEED_SLURM_DIR", "/tmp/seed-slurm")) / "slurm.conf"
    return str(conf) if conf.is_file() else None


@pytest.fixture(scope="module")
def cluster():
    conf = _conf()
    env = {**os.environ, **({"SLURM_CONF": conf} if conf else {})}
    up = shutil.which("sinfo") and subprocess.run(["sinfo", "-h"], env=env, capture_output=True).returncode == 0
    if not up:
        why = "no live SLURM cluster: start one with `bash tools/slurm_cluster.sh start` (root + apt-get)"
        if os.environ.get("SEED_REQUIRE_SLURM") == "1":
            pytest.fail(why)
        pytest.skip(why)
    return env


@pytest.fixture(autouse=True)
def slurm_env(cluster, monkeypatch):
    """SLURM_CONF for sbatch, and PYTHONPATH for the jobs (tiny_job here, train_worker in tests/distill)."""
    for key in ("SLURM_CONF",):
        if key in cluster:
            monkeypatch.setenv(key, cluster[key])
    paths = [str(HERE), str(HERE.parents[1] / "distill"), os.environ.get("PYTHONPATH", "")]
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(p for p in paths if p))


def assert_same_student(out: Path, reference: Path) -> None:
    ours, theirs = (safe_load(p / "student.pth")["state_dict"] for p in (out, reference))
    assert ours.keys() == theirs.keys()
    assert all(torch.equal(ours[k], theirs[k]) for k in ours)


def squeue(job_id: str) -> str:
    """The job's state as squeue shows it ("" once it has left the queue)."""
    return subprocess.run(["squeue", "-h", "-j", job_id, "-o", "%T"], capture_output=True, text=True).stdout.strip()


def wait_for(condition, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.5)


def test_a_job_on_the_real_queue_makes_the_direct_runs_student(tmp_path, data_root, direct, capsys):
    cfg = load_launcher_config("slurm", ["time_min=10", "max_requeues=1", THREADS])
    job = submit("tiny_job:main", [str(data_root), str(tmp_path / "run")], cfg, tmp_path)
    printed = capsys.readouterr().out
    assert "to SLURM" in printed and f"squeue -j {job.job_id}" in printed  # a real SLURM job id
    assert job.result() == 0, job.stderr()
    assert_same_student(tmp_path / "run", direct)
    # job accounting is real (slurmdbd): sacct answers, and submitit reads the state from it
    wait_for(lambda: sacct_state(job.job_id) == "COMPLETED", 60, f"sacct to record job {job.job_id}")
    assert job.state == "COMPLETED"


def sacct_state(job_id: str) -> str:
    done = subprocess.run(["sacct", "-n", "-X", "-j", job_id, "-o", "State"], capture_output=True, text=True)
    assert done.returncode == 0, f"sacct failed: {done.stderr.strip()} (no slurmdbd?)"
    return done.stdout.strip()


def test_a_refused_submission_is_one_line_naming_the_launcher_key(tmp_path):
    # a GPU asked of a CPU-only cluster: sbatch refuses it
    result = subprocess.run(
        [sys.executable, str(REPO / "tools/distill.py"), "--config", str(REPO / "configs/distill/demo.yaml"),
         "--launcher", "slurm", "launcher.gpus_per_node=1", f"train.output_dir={tmp_path / 'run'}"],
        capture_output=True, text=True,
    )  # fmt: skip
    last = result.stderr.strip().splitlines()[-1]
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert last.startswith("error: SLURM refused the job") and "launcher.gpus_per_node" in last


def preempt_with_a_high_job(tmp_path: Path) -> str:
    """Submit a 3-second job of the high partition that needs every CPU of the node: it preempts what
    runs in the low partition. Returns its job id."""
    return subprocess.run(
        ["sbatch", "--parsable", "-p", "high", "-c", str(os.cpu_count()), "-o", str(tmp_path / "blocker.out"),
         "--wrap", "sleep 3"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip


def test_preemption_by_a_higher_partition_checkpoints_requeues_and_ends_as_an_uninterrupted_run(
    tmp_path, data_root, direct
):
    out = tmp_path / "run"
    cfg = load_launcher_config("slurm", ["partition=low", "time_min=120", "max_requeues=2", THREADS])
    job = submit("tiny_job:main", [str(data_root), str(out), "--wait-for-signal-at", "4"], cfg, tmp_path)
    wait_for((out / "waiting.pid").exists, 180, "the job to reach step 5")
    blocker = preempt_with_a_high_job(tmp_path)
    assert job.result() == 0, job.stderr()
    assert squeue(blocker) == ""  # it ran while the preempted job waited
    assert_same_student(out, direct)
    log = job.stderr()
    assert "checkpoint saved after step 5 on the signal" in log
    assert "resumed from" in log and "requeued (1 of at most 2)" in log


def test_the_time_limits_early_signal_requeues_instead_of_killing(tmp_path, data_root, direct):
    # A 2-minute limit with the signal 100 s before it. SLURM checks every 30 s, so USR2 comes anywhere
    # from the job's first second (seen in CI: before the training had started) to about 50 s in; the
    # job waits for it at step 5 (the requeued job, with --resume, does not wait). Either way it is
    # requeued once, not killed, and ends on the direct run's student.
    out = tmp_path / "run"
    cfg = load_launcher_config("slurm", ["time_min=2", "signal_delay_s=100", "max_requeues=2", THREADS])
    job = submit("tiny_job:main", [str(data_root), str(out), "--wait-for-signal-at", "4"], cfg, tmp_path)
    assert job.result() == 0, job.stderr()
    assert_same_student(out, direct)
    log = job.stderr()
    assert "this job is timed-out" in log and "requeued (1 of at most 2)" in log
    assert "requeued (2 of" not in log


def chain_node(name: str, output: Path, fn, *args, deps=()):
    """A node that is done once ``output`` exists and runs ``fn(args)``."""
    from functools import partial

    from seed_transfer.pipelines.jobs import Node

    return Node(name, name, name, "job", tuple(deps), output.is_file, partial(fn, [str(a) for a in args]))


def wait_until_left_the_queue(ids: list[str], seconds: float = 240) -> None:
    wait_for(lambda: all(squeue(job_id) == "" for job_id in ids), seconds, f"jobs {', '.join(ids)} to end")


def test_a_chained_graph_returns_at_once_and_a_second_call_resubmits_only_what_failed_or_was_cancelled(
    tmp_path, caplog
):
    import json

    from dag_jobs import fail_unless, touch, wait_then_touch

    from seed_transfer.pipelines.jobs import DAG_FOLDER, JOB_IDS, submit_nodes

    f = {name: tmp_path / f"{name}.txt" for name in ("a", "b", "c", "d", "e", "report", "fixed", "go")}
    graph = [
        chain_node("a", f["a"], wait_then_touch, f["go"], f["a"]),  # held until the test says go
        chain_node("b", f["b"], touch, f["b"], f["a"], deps=["a"]),  # fails if it runs before a
        chain_node("c", f["c"], fail_unless, f["fixed"], f["c"]),  # fails until "fixed" exists
        chain_node("d", f["d"], touch, f["d"], f["c"], deps=["c"]),
        chain_node("e", f["e"], touch, f["e"], f["a"], deps=["a"]),  # the user scancels it while it waits
    ]
    report = chain_node("report", f["report"], touch, f["report"])
    launcher = load_launcher_config("slurm", ["time_min=10", "max_requeues=0", "cpus_per_task=1"])
    job_fn = "seed_transfer.pipelines.jobs:run_node"

    outcome = submit_nodes(graph, report, {"job": launcher}, tmp_path, job_fn)
    assert outcome["submitted"] == ["a", "b", "c", "d", "e", "report"] and not f["a"].exists()  # returned at once
    ids = json.loads((tmp_path / DAG_FOLDER / JOB_IDS).read_text())
    assert squeue(ids["a"]) in ("PENDING", "RUNNING")
    again = submit_nodes(graph, report, {"job": launcher}, tmp_path, job_fn)  # while a waits: nothing twice
    assert not again["submitted"] and not again["resubmitted"] and "a" in again["queued"]
    assert json.loads((tmp_path / DAG_FOLDER / JOB_IDS).read_text()) == ids
    subprocess.run(["scancel", ids["e"]], check=True)  # one waiting job of the graph cancelled by hand
    wait_until_left_the_queue([ids["e"], ids["report"]], 60)  # the report needed e: SLURM cancels it too
    assert squeue(ids["a"]) in ("PENDING", "RUNNING")  # the rest of the graph goes on

    f["go"].write_text("go\n")
    wait_until_left_the_queue(list(ids.values()))
    assert f["a"].is_file() and f["b"].is_file()  # b ran after a, through SLURM's dependency
    assert not f["c"].exists() and not f["d"].exists() and not f["report"].exists()  # c failed: d, report cancelled
    assert not f["e"].exists()

    f["fixed"].write_text("fixed\n")
    with caplog.at_level(logging.WARNING, logger="seed_transfer.pipelines.jobs"):
        third = submit_nodes(graph, report, {"job": launcher}, tmp_path, job_fn)
    assert f"c: its job {ids['c']} ended without its outputs" in caplog.text  # named, with its log
    assert f"submitit/{ids['c']}_0_log.err" in caplog.text
    assert f"e: its job {ids['e']} ended without its outputs" in caplog.text
    assert third["done"] == ["a", "b"] and third["resubmitted"] == ["c", "d", "e", "report"] and not third["queued"]
    new_ids = json.loads((tmp_path / DAG_FOLDER / JOB_IDS).read_text())
    again_ids = {new_ids[n] for n in ("c", "d", "e", "report")}
    assert again_ids.isdisjoint(ids.values()) and new_ids["a"] == ids["a"]
    wait_until_left_the_queue(list(again_ids))
    assert all(f[name].is_file() for name in ("c", "d", "e", "report"))


def test_a_comparison_on_the_real_queue_returns_once_submitted_and_its_last_job_writes_the_report(tmp_path):
    import csv
    import json

    sys.path.insert(0, str(REPO / "tests" / "golden"))
    from golden import PRESET

    from seed_core.config import load_config
    from seed_transfer.pipelines.compare import CompareConfig
    from seed_transfer.pipelines.compare.dag import run_compare_dag
    from seed_transfer.pipelines.jobs import DAG_FOLDER, JOB_IDS

    out = tmp_path / "cmp"
    small = ["distill.strategies=[seed]", "distill.seeds=1", "rows.pixels=false", "rows.teacher=null", "det.seeds=1"]
    cfg = load_config(CompareConfig, PRESET, [f"output_dir={out}", f"det.data_root={tmp_path / 'data'}", *small])
    launcher = load_launcher_config("slurm", ["time_min=20", "max_requeues=0", "cpus_per_task=1"])
    result = run_compare_dag(cfg, launcher, command="compare")
    assert result["chained"]["submitted"][-1] == "report" and len(result["chained"]["submitted"]) == 6
    assert not (out / "report.md").exists()  # returned once submitted
    ids = json.loads((out / DAG_FOLDER / JOB_IDS).read_text())
    wait_until_left_the_queue([ids["report"]], seconds=900)
    assert (out / "report.md").is_file(), "the report job did not write the report"
    rows = {row["row"] for row in csv.DictReader((out / "results.csv").open())}
    assert {"seed", "random"} <= rows
    again = run_compare_dag(cfg, launcher, command="compare")  # everything done: the report, here, nothing submitted
    assert "chained" not in again and again["report"] == str(out / "report.md")


def test_a_job_of_two_tasks_gets_its_ranks_and_one_rendezvous_from_slurm(tmp_path):
    import json

    cfg = load_launcher_config("slurm", ["tasks_per_node=2", "cpus_per_task=1", "time_min=5", "max_requeues=0"])
    job = submit("rank_probe:main", [str(tmp_path)], cfg, tmp_path)
    assert job.results() == [0, 0]  # one result per task
    seen = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)]
    assert [(s["RANK"], s["LOCAL_RANK"], s["WORLD_SIZE"]) for s in seen] == [("0", "0", "2"), ("1", "1", "2")]
    assert seen[0]["MASTER_ADDR"] and seen[0]["MASTER_ADDR"] == seen[1]["MASTER_ADDR"]
    assert seen[0]["MASTER_PORT"] and seen[0]["MASTER_PORT"] == seen[1]["MASTER_PORT"]


def test_a_job_of_two_tasks_is_preempted_requeued_and_ends_as_the_single_process_run(tmp_path, data_root, direct):
    """Both ranks hold the signal, one checkpoint is written, SLURM requeues the whole job and both ranks
    resume from it (2 gloo processes x 4 images equal 1 process x 8 up to float rounding: atol 1e-5)."""
    import json

    out = tmp_path / "run"
    cfg = load_launcher_config(
        "slurm", ["partition=low", "tasks_per_node=2", "cpus_per_task=1", "time_min=120", "max_requeues=2"]
    )
    job = submit("tiny_job:main", [str(data_root), str(out), "--wait-for-signal-at", "4"], cfg, tmp_path)
    wait_for((out / "waiting.pid").exists, 240, "the job to reach step 5")
    blocker = preempt_with_a_high_job(tmp_path)
    assert job.results() == [0, 0], job.stderr()
    assert squeue(blocker) == ""
    assert json.loads((out / "run_info.json").read_text())["world_size"] == 2  # one DDP run of 2 ranks
    ours, theirs = (safe_load(p / "student.pth")["state_dict"] for p in (out, direct))
    assert ours.keys() == theirs.keys() and all(torch.allclose(ours[k], theirs[k], atol=1e-5) for k in ours)
    log = job.stderr()
    assert "checkpoint saved after step 5 on the signal" in log
    assert "resumed from" in log and "requeued (1 of at most 2)" in log

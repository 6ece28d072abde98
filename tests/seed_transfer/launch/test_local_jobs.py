"""Tiny distillations as submitit jobs on its local executor (real processes, real signals):
the same student as a direct run, and after a preemption signal, a checkpoint after the running
step and a requeue with --resume that ends on the same parameters as an uninterrupted run."""

import os
import signal
import time
from pathlib import Path

import pytest
import torch

from seed_core.checkpoint_files import safe_load
from seed_transfer.launch import load_launcher_config, submit

HERE = Path(__file__).parent
# a job runs torch on cpus_per_task threads; the same count as the direct run here, so the same arithmetic
LOCAL_JOB = ["executor=local", "max_requeues=2", "time_min=10", f"cpus_per_task={torch.get_num_threads()}"]


@pytest.fixture(autouse=True)
def importable_in_jobs(monkeypatch):
    """The jobs import tiny_job (this folder) and train_worker/tiny (tests/distill)."""
    paths = [str(HERE), str(HERE.parents[1] / "distill"), os.environ.get("PYTHONPATH", "")]
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(p for p in paths if p))


def assert_same_tensors(a, b):
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def assert_same_run(out, reference):
    assert_same_tensors(
        safe_load(out / "student.pth")["state_dict"], safe_load(reference / "student.pth")["state_dict"]
    )
    ours, theirs = safe_load(out / "checkpoint.pth"), safe_load(reference / "checkpoint.pth")
    assert ours["step"] == theirs["step"] == 6
    assert_same_tensors(ours["model"], theirs["model"])


@pytest.mark.slow
def test_local_executor_job_makes_the_direct_runs_student(tmp_path, data_root, direct, capsys):
    out = tmp_path / "run"
    job = submit("tiny_job:main", [str(data_root), str(out)], load_launcher_config("slurm", LOCAL_JOB), tmp_path)
    printed = capsys.readouterr().out
    assert f"submitted job {job.job_id} (tiny_job, 1 node(s) x 1 process(es)) to submitit's local executor" in printed
    assert f"follow: tail -f {tmp_path / 'submitit'}" in printed
    assert job.result() == 0, job.stderr()
    assert_same_run(out, direct)


@pytest.mark.slow
def test_preempted_job_requeues_with_resume_and_ends_as_an_uninterrupted_run(tmp_path, data_root, direct):
    out = tmp_path / "run"
    job = submit(
        "tiny_job:main",
        [str(data_root), str(out), "--wait-for-signal-at", "4"],
        load_launcher_config("slurm", LOCAL_JOB),
        tmp_path,
    )
    pid_file = out / "waiting.pid"
    deadline = time.monotonic() + 240
    while not pid_file.exists():  # the job waits as its 5th step begins
        assert not job.done() and time.monotonic() < deadline, job.stderr()
        time.sleep(0.2)
    assert safe_load(out / "checkpoint.pth")["step"] == 3  # the last periodic checkpoint
    os.kill(int(pid_file.read_text()), signal.SIGUSR2)  # what SLURM sends before the time limit / on preemption
    assert job.result() == 0, job.stderr()
    assert_same_run(out, direct)
    log = job.stderr()
    # the step that was running finished, a checkpoint was saved after it, and the requeued job
    # continued from there (not from the periodic checkpoint of step 3)
    assert "checkpoint saved after step 5 on the signal" in log
    assert "resumed from" in log and "at step 5" in log
    assert "requeued (1 of at most 2) as tiny_job:main" in log and "--resume" in log
    assert "requeued 1 of at most 2 times" in log  # the requeued job knows it is one

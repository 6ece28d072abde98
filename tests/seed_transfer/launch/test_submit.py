import pytest

from seed_core.errors import UserError
from seed_transfer.launch import check, load_launcher_config, submit


def _refuse(argv):
    raise AssertionError("nothing may run")


def test_slurm_without_sbatch_fails_up_front(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no sbatch here
    cfg = load_launcher_config("slurm", ["nodes=2", "gpus_per_node=8"])
    with pytest.raises(
        UserError,
        match=r"^launcher: slurm needs SLURM, and this machine has no sbatch on PATH: "
        r"submit from a SLURM login node, or run here with --launcher local",
    ):
        submit(_refuse, [], cfg, tmp_path)
    assert not (tmp_path / "submitit").exists()  # nothing submitted, no folder made


def test_submitit_executors_other_than_slurm_run_on_one_node(tmp_path):
    with pytest.raises(UserError, match=r"launcher.executor=local runs on this machine only: launcher.nodes must be 1"):
        check(load_launcher_config("slurm", ["executor=local", "nodes=2"]))


def test_torchrun_on_several_nodes_says_what_to_run_on_each(tmp_path, monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    with pytest.raises(UserError, match=r"on each node run torchrun --nnodes 2 --node_rank <i> --nproc_per_node 4"):
        submit(_refuse, [], load_launcher_config("torchrun", ["nodes=2", "gpus_per_node=4"]), tmp_path)


def test_local_runs_here_and_returns_the_status(tmp_path):
    seen = []
    assert submit(lambda argv: seen.append(argv) or 3, ["--x", "1"], load_launcher_config(), tmp_path) == 3
    assert seen == [["--x", "1"]]


def test_checkpoint_requeues_the_command_with_resume_until_max_requeues():
    from seed_transfer.launch.job import CommandJob

    job = CommandJob("tiny_job:main", ["data", "out", "optim.epochs=2"], max_requeues=2)
    first = job.checkpoint()
    assert first.function.argv == ["data", "out", "optim.epochs=2", "--resume"] and first.function.requeues == 1
    second = first.function.checkpoint()
    assert second.function.argv == first.function.argv and second.function.requeues == 2  # --resume once
    assert second.function.checkpoint() is None  # a third requeue is refused: the job fails
    assert job.argv == ["data", "out", "optim.epochs=2"]  # the submitted job is left as it was

"""What each process of a launch is told: ranks, world size and rendezvous, from torchrun and
from a submitit job of several tasks (the variables seed_core.distributed.init_from_env reads)."""

import json
import os
from pathlib import Path

import pytest

from seed_transfer.launch import load_launcher_config, submit

HERE = Path(__file__).parent


def ranks_seen(folder: Path) -> list[dict]:
    return [json.loads((folder / f"rank{r}.json").read_text()) for r in range(2)]


@pytest.mark.slow
def test_torchrun_launcher_starts_one_process_per_gpu(tmp_path, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]))
    for key in ("WORLD_SIZE", "RANK", "LOCAL_RANK"):
        monkeypatch.delenv(key, raising=False)
    assert (
        submit("rank_probe:main", [str(tmp_path)], load_launcher_config("torchrun", ["gpus_per_node=2"]), tmp_path) == 0
    )
    seen = ranks_seen(tmp_path)
    assert [(s["RANK"], s["LOCAL_RANK"], s["WORLD_SIZE"]) for s in seen] == [("0", "0", "2"), ("1", "1", "2")]


@pytest.mark.slow
def test_submitit_job_of_two_tasks_gives_each_its_rank(tmp_path, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]))
    cfg = load_launcher_config("slurm", ["executor=local", "gpus_per_node=2", "cpus_per_task=1", "time_min=5"])
    job = submit("rank_probe:main", [str(tmp_path)], cfg, tmp_path)
    assert job.results() == [0, 0]
    seen = ranks_seen(tmp_path)
    assert [(s["RANK"], s["LOCAL_RANK"], s["WORLD_SIZE"]) for s in seen] == [("0", "0", "2"), ("1", "1", "2")]
    assert seen[0]["MASTER_ADDR"] == seen[1]["MASTER_ADDR"] and seen[0]["MASTER_PORT"] == seen[1]["MASTER_PORT"]

"""One launcher: in this process, on spawned local processes, and as ranks of torchrun, with the
same environment inside; and the step's finiteness check agreed over the ranks."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.distributed as dist

from seed_core import distributed as du
from seed_core.runtime import launch, optimizer_step

HERE = Path(__file__).parent
REPO = HERE.parents[2]


def report(folder: str) -> str:
    """What a rank sees: its device, rank and world, and whether a NaN on rank 1 alone stops it."""
    device = du.init_from_env(device_type="cpu")
    weight = torch.nn.Parameter(torch.ones(1))
    loss = weight.sum() * (float("nan") if du.rank() == 1 else 1.0)
    try:
        optimizer_step(loss, torch.optim.SGD([weight], lr=0.1), nonfinite=lambda value: f"loss is {value}")
        stopped = None
    except FloatingPointError as err:
        stopped = str(err)
    seen = {
        "device": str(device),
        "rank": du.rank(),
        "world": du.world_size(),
        "stopped": stopped,
        "env": {k: os.environ.get(k) for k in ("RANK", "LOCAL_RANK", "WORLD_SIZE")},
    }
    Path(folder, f"rank{du.rank()}.json").write_text(json.dumps(seen))
    return "done"


def test_a_single_process_runs_main_here_without_a_process_group(tmp_path, monkeypatch):
    for name in ("RANK", "LOCAL_RANK", "WORLD_SIZE"):
        monkeypatch.delenv(name, raising=False)
    assert launch(report, (str(tmp_path),)) == "done"
    seen = json.loads((tmp_path / "rank0.json").read_text())
    assert seen == {
        "device": "cpu",
        "rank": 0,
        "world": 1,
        "stopped": None,
        "env": {"RANK": None, "LOCAL_RANK": None, "WORLD_SIZE": None},
    }
    assert not dist.is_initialized()


def check_two_ranks(folder: Path) -> None:
    for rank in (0, 1):
        seen = json.loads((folder / f"rank{rank}.json").read_text())
        assert seen["rank"] == rank and seen["world"] == 2 and seen["device"] == "cpu"
        assert seen["env"] == {"RANK": str(rank), "LOCAL_RANK": str(rank), "WORLD_SIZE": "2"}
        # rank 0's loss is finite, but it stops with rank 1 instead of waiting for it for ever
        assert seen["stopped"] == f"loss is {1.0 if rank == 0 else float('nan')}"


@pytest.mark.slow
def test_spawned_processes_see_what_torchrun_gives_and_agree_on_a_nan(tmp_path, monkeypatch):
    for name in ("RANK", "LOCAL_RANK", "WORLD_SIZE"):
        monkeypatch.delenv(name, raising=False)
    assert launch(report, (str(tmp_path),), num_processes=2, backend="gloo") is None
    check_two_ranks(tmp_path)


@pytest.mark.slow
def test_under_torchrun_each_rank_runs_main_once(tmp_path):
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", __file__, str(tmp_path)]
    result = subprocess.run(
        cmd, capture_output=True, text=True, timeout=300, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}
    )
    assert result.returncode == 0, result.stderr[-3000:]
    check_two_ranks(tmp_path)


if __name__ == "__main__":  # a rank of the torchrun test
    print(launch(report, (sys.argv[1],), backend="gloo"))

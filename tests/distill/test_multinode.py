"""Two "nodes" on this machine: two torchrun launchers (``--nnodes 2 --nproc_per_node 1``, one per
``--node_rank``) that meet on 127.0.0.1 over gloo. Every process has LOCAL_RANK 0, so a helper
that took the local rank for the global one would shard the data alike on both (different
updates) or let both write the outputs (each step logged twice)."""

import csv
import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from test_trainer import assert_same_state, student_of, training_state
from tiny import make_image_folder
from train_worker import run

HERE = Path(__file__).parent
REPO = HERE.parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_node_torchrun_matches_single_process(tmp_path):
    """2 nodes x 1 process x 4 images == 1 process x 8 images: same views, same updates."""
    data_root = make_image_folder(tmp_path / "images", classes=2, per_class=8)
    overrides = ["distill.strategy=seed+moco", "optim.epochs=2"]
    single, nodes = tmp_path / "single", tmp_path / "nodes"
    run(data_root, single, *overrides)
    port = free_port()
    launchers = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "torch.distributed.run",
                "--nnodes=2",
                "--nproc_per_node=1",
                f"--node_rank={rank}",
                "--master_addr=127.0.0.1",
                f"--master_port={port}",
                str(HERE / "train_worker.py"),
                str(data_root),
                str(nodes),
                *overrides,
            ],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for rank in (0, 1)
    ]
    outputs = []
    for launcher in launchers:
        try:
            outputs.append(launcher.communicate(timeout=300)[0])
        finally:
            launcher.kill()
    for launcher, output in zip(launchers, outputs):
        assert launcher.returncode == 0, output[-3000:]
    assert_same_state(training_state(single), training_state(nodes), atol=1e-5)
    assert_same_state(student_of(single), student_of(nodes), atol=1e-5)
    rows = list(csv.DictReader(open(nodes / "metrics.csv")))
    assert [int(r["step"]) for r in rows] == list(range(1, 5))  # global rank 0 alone logged each step
    assert json.loads((nodes / "run_info.json").read_text())["world_size"] == 2

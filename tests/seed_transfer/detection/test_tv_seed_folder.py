"""A fine-tuning's seed folder (seed_transfer.finetune.seed_folder, here through the torchvision
engine): a finished seed is skipped (the documented default), an interrupted one is continued
only with --resume and started over only with --overwrite, and one process writes it at a time."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from test_tv_train import C4, FAST

from seed_core.run_lock import LOCK_NAME, FolderInUse
from seed_core.runtime import RunExists
from seed_transfer.detection.transfer import run_detection_transfer

REPO = Path(__file__).parents[3]


def test_an_interrupted_seed_is_continued_or_started_over_only_when_asked(tmp_path):
    out, data = tmp_path / "out", str(tmp_path / "datasets")

    def transfer(**request):
        return run_detection_transfer(
            str(C4), "random", out, engine="torchvision", data_root=data, opts=FAST, **request
        )

    transfer()
    seed = out / "seed0"
    checkpoint = (seed / "checkpoint.pth").read_bytes()
    transfer()  # the same command again: the finished seed is skipped
    assert (seed / "checkpoint.pth").read_bytes() == checkpoint

    (seed / "metrics.json").unlink()  # an interrupted seed: a checkpoint, no results
    cli = subprocess.run(
        [
            sys.executable,
            str(REPO / "tools/transfer_det.py"),
            "--config",
            str(C4),
            "--weights",
            "random",
            "--engine",
            "torchvision",
            "--output-dir",
            str(out),
            "--data-root",
            data,
            *FAST,
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    lines = cli.stderr.strip().splitlines()
    assert cli.returncode == 2 and "Traceback" not in cli.stderr, cli.stderr[-3000:]
    assert lines[-1] == (
        f"error: {seed} already holds a run (checkpoint.pth): continue it with --resume, start it over with "
        "--overwrite (removes checkpoint.pth, train_log.jsonl, config.yaml), or give another run.output_dir"
    )
    assert (seed / "checkpoint.pth").read_bytes() == checkpoint and not (seed / LOCK_NAME).exists()
    with pytest.raises(RunExists):
        transfer()

    (seed / LOCK_NAME).write_text(json.dumps({"host": socket.gethostname(), "pid": os.getpid(), "tool": "a job"}))
    with pytest.raises(FolderInUse, match=f"is in use by a job \\(process {os.getpid()}"):
        transfer(resume=True)  # another process is fine-tuning this seed
    (seed / LOCK_NAME).unlink()

    transfer(overwrite=True)
    assert len((seed / "train_log.jsonl").read_text().splitlines()) == 2  # started over: the old log was removed
    assert torch.load(seed / "checkpoint.pth", weights_only=True)["step"] == 2 and (seed / "metrics.json").is_file()

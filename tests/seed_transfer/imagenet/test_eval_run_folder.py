"""The ImageNet trainers' output folder, in fresh processes as a user types the commands: one writer
at a time (a second process is refused naming the holder; a killed holder's lock is taken over),
a run there is continued only with --resume and started over only with --overwrite, Ctrl-C ends
with one line naming the last checkpoint and the command that continues it, and an exported
student given as the checkpoint to resume is refused in one line."""

import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import torch
import torchvision
from tiny_bn import make_imagenet

REPO = Path(__file__).parents[3]


def command(root: Path, out: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        str(REPO / "tools/eval_linear.py"),
        "--config",
        str(REPO / "configs/eval/linear_imagenet.yaml"),
        "model.weights=random",
        "model.arch=resnet18",
        f"data.root={root}",
        "data.train_crop=12",
        "data.num_workers=0",
        "features.resize=14",
        "features.crop=12",
        "optim.epochs=5000",  # 10000 steps: long enough to be interrupted
        "optim.batch_size=4",
        "optim.milestones=[400]",
        "train.eval_every=1000",
        "train.checkpoint_every=5",
        "train.tensorboard=false",
        f"train.output_dir={out}",
        *extra,
    ]


def run(cmd: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=cwd)


def one_line_error(result: subprocess.CompletedProcess, status: int = 2) -> str:
    """The only ``error:`` line, last on stderr, with ``status`` and no traceback."""
    lines = result.stderr.strip().splitlines()
    assert result.returncode == status, result.stderr[-3000:]
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    assert [line for line in lines if line.startswith("error: ")] == lines[-1:], result.stderr[-3000:]
    return lines[-1]


def wait_for(path: Path, process: subprocess.Popen, seconds: float = 240) -> None:
    deadline = time.monotonic() + seconds
    while not path.exists():
        assert process.poll() is None, process.communicate()[1][-3000:]
        assert time.monotonic() < deadline, f"{path} did not appear"
        time.sleep(0.05)


def test_one_writer_ctrl_c_resume_overwrite_and_a_stale_lock(tmp_path):
    root = make_imagenet(tmp_path / "imagenet", classes=2, train_per_class=4, val_per_class=2)
    out = tmp_path / "out"
    # Ctrl-C as a terminal delivers it: whatever started pytest in the background (a shell starts
    # background commands with SIGINT ignored, and Python keeps that), the child takes the default
    first = subprocess.Popen(
        command(root, out),
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        wait_for(out / "checkpoint.pth", first)
        second = run(command(root, out, "--resume"), tmp_path)  # a second terminal, the same folder
        assert f"{out.resolve()} is in use by ImageNet evaluation (linear_eval) (process {first.pid} on" in (
            one_line_error(second)
        )
        assert first.poll() is None  # the first goes on
        first.send_signal(signal.SIGINT)
        _, stderr = first.communicate(timeout=120)
    finally:
        if first.poll() is None:
            first.kill()
    interrupted = subprocess.CompletedProcess(first.args, first.returncode, "", stderr)
    line = one_line_error(interrupted, status=130)
    assert line.startswith("error: interrupted (Ctrl-C) during step ") and "of 10000" in line
    assert f"the last checkpoint is {out / 'checkpoint.pth'} (step " in line
    saved = torch.load(out / "checkpoint.pth", weights_only=True)["step"]
    assert f"(step {saved});" in line and not (out / ".lock").exists()
    resume_cmd = shlex.split(line.split("continue with: ", 1)[1])
    assert resume_cmd[-1] == "--resume" and resume_cmd[1:-1] == command(root, out)[1:]

    # the command it names continues from that checkpoint (stopped a few steps on, to keep the test short)
    resumed = run([sys.executable, *resume_cmd[1:-1], f"train.max_steps={saved + 3}", "--resume"], tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"resumed from {out / 'checkpoint.pth'} at step {saved}" in resumed.stderr
    assert json.loads((out / "linear_eval.json").read_text())["steps"] == saved + 3

    again = run(command(root, out, "train.max_steps=2"), tmp_path)  # the first command, re-typed
    assert f"{out} already holds a run (checkpoint.pth, linear_eval.json): continue it with --resume, " in (
        one_line_error(again)
    )
    assert "--overwrite" in again.stderr and torch.load(out / "checkpoint.pth", weights_only=True)["step"] == saved + 3

    over = run(command(root, out, "train.max_steps=2", "--overwrite"), tmp_path)
    assert over.returncode == 0 and "--overwrite: removed the run" in over.stderr, over.stderr[-3000:]
    assert torch.load(out / "checkpoint.pth", weights_only=True)["step"] == 2

    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    (out / ".lock").write_text(json.dumps({"host": socket.gethostname(), "pid": gone.pid, "tool": "killed"}))
    taken = run(command(root, out, "train.max_steps=4", "--resume"), tmp_path)
    assert taken.returncode == 0 and "taking over a stale lock" in taken.stderr, taken.stderr[-3000:]
    assert torch.load(out / "checkpoint.pth", weights_only=True)["step"] == 4 and not (out / ".lock").exists()


def test_an_exported_student_on_resume_and_an_unwritable_folder_are_one_line(tmp_path):
    root = make_imagenet(tmp_path / "imagenet", classes=2, train_per_class=2, val_per_class=1)
    out = tmp_path / "out"
    out.mkdir()
    student = {"format": "seed-transfer/student-v1", "arch": "resnet18", "meta": {"step": 6}}
    torch.save({**student, "state_dict": torchvision.models.resnet18().state_dict()}, out / "checkpoint.pth")
    result = run(command(root, out, "--resume"), tmp_path)
    line = one_line_error(result)
    assert f"{out / 'checkpoint.pth'} is a seed-transfer/student-v1 file, not a training checkpoint" in line

    (tmp_path / "taken").write_text("a file where the output folder should be")
    result = run(command(root, tmp_path / "taken"), tmp_path)
    assert f"train.output_dir={tmp_path / 'taken'} is a file, not a folder" in one_line_error(result)
    assert (tmp_path / "taken").read_text().startswith("a file")
    if os.geteuid() != 0:  # root writes into read-only folders (tests/seed_core/runtime covers the message)
        (tmp_path / "ro").mkdir(mode=0o555)
        assert "is not writable" in one_line_error(run(command(root, tmp_path / "ro" / "out"), tmp_path))

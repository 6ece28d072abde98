import csv
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from tiny import make_image_folder
from train_worker import run, tiny_config, tiny_method

from seed_core.checkpoint_files import safe_load

HERE = Path(__file__).parent
REPO = HERE.parents[1]


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    return make_image_folder(tmp_path_factory.mktemp("images"), classes=2, per_class=8)  # 16 images, 2 steps/epoch


def student_of(output_dir):
    return safe_load(Path(output_dir) / "student.pth")["state_dict"]


def training_state(output_dir):
    return safe_load(Path(output_dir) / "checkpoint.pth")["model"]


def assert_same_state(a, b, atol=0.0):
    assert a.keys() == b.keys()
    for key in a:
        if atol:
            assert torch.allclose(a[key].float(), b[key].float(), atol=atol), key
        else:
            assert torch.equal(a[key], b[key]), key


@pytest.mark.parametrize("strategy", ["seed", "seed+moco"])
def test_stop_and_resume_equals_uninterrupted_run(tmp_path, data_root, strategy):
    run(data_root, tmp_path / "full", f"distill.strategy={strategy}")
    run(data_root, tmp_path / "parts", f"distill.strategy={strategy}", "train.max_steps=3")  # stops mid-epoch
    run(data_root, tmp_path / "parts", f"distill.strategy={strategy}", resume=True)
    assert_same_state(training_state(tmp_path / "full"), training_state(tmp_path / "parts"))
    assert_same_state(student_of(tmp_path / "full"), student_of(tmp_path / "parts"))
    rows = list(csv.DictReader(open(tmp_path / "parts" / "metrics.csv")))
    assert [int(r["step"]) for r in rows] == list(range(1, 7))  # one row per step, appended on resume


def test_resume_logs_each_step_once_and_cleans_killed_writes(tmp_path, data_root):
    run(data_root, tmp_path, "train.max_steps=2")
    with open(tmp_path / "metrics.csv", "a") as f:  # a killed run logged step 3 after its last checkpoint
        f.write("3,9.9,9.9,0.1,1.5,1.0\r\n")
    stale = tmp_path / ".checkpoint.pth.abc123.tmp"  # and was killed while saving
    stale.write_bytes(b"half a checkpoint")
    run(data_root, tmp_path, resume=True)
    rows = list(csv.DictReader(open(tmp_path / "metrics.csv")))
    assert [int(r["step"]) for r in rows] == list(range(1, 7)) and "9.9" not in rows[2].values()
    assert not stale.exists()


def test_resume_refuses_a_changed_config(tmp_path, data_root):
    run(data_root, tmp_path, "train.max_steps=1")
    with pytest.raises(
        ValueError,
        match=r"settings that alter the training changed since it was written "
        r"\(distill.tau_teacher: 0.01 -> 0.1\)",
    ):
        run(data_root, tmp_path, "distill.tau_teacher=0.1", resume=True)


def test_outputs_written(tmp_path, data_root):
    student_path = run(data_root, tmp_path, "train.max_steps=2", "train.tensorboard=true")
    exported = safe_load(student_path)
    assert exported["format"] == "seed-transfer/student-v1"
    assert exported["meta"]["step"] == 2 and exported["meta"]["strategy"] == "seed"
    assert not any(k.startswith("head") for k in exported["state_dict"])
    for name in ("config.yaml", "run_info.json", "metrics.csv", "checkpoint.pth"):
        assert (tmp_path / name).is_file(), name
    assert any((tmp_path / "tb").iterdir())


def test_nan_loss_stops_and_keeps_last_good_checkpoint(tmp_path, data_root):
    from distill.trainer import train

    cfg = tiny_config(data_root, tmp_path, "train.checkpoint_every=2")
    method = tiny_method(cfg)
    forward, calls = method.forward, []

    def nan_at_third_step(views, teacher_emb=None):
        loss, parts = forward(views, teacher_emb)
        calls.append(1)
        return (loss * float("nan") if len(calls) == 3 else loss), parts

    method.forward = nan_at_third_step
    with pytest.raises(FloatingPointError, match="loss is nan at step 2.*last good checkpoint"):
        train(cfg, method=method)
    assert safe_load(tmp_path / "checkpoint.pth")["step"] == 2
    assert all(torch.isfinite(v).all() for v in training_state(tmp_path).values() if v.is_floating_point())


@pytest.mark.slow
def test_two_process_ddp_matches_single_process(tmp_path, data_root):
    """2 gloo processes x 4 images == 1 process x 8 images (same views, same updates)."""
    args = [str(data_root), "", "distill.strategy=seed+moco", "optim.epochs=2"]
    single, ddp = tmp_path / "single", tmp_path / "ddp"
    run(*[args[0], single, *args[2:]])
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node=2",
        str(HERE / "train_worker.py"),
        args[0],
        str(ddp),
        *args[2:],
    ]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=REPO)
    assert result.returncode == 0, result.stderr[-3000:]
    assert_same_state(training_state(single), training_state(ddp), atol=1e-5)
    assert_same_state(student_of(single), student_of(ddp), atol=1e-5)


def test_cli_runs_and_reports_config_errors(tmp_path, data_root):
    teacher = torch.nn.Module()
    import torchvision

    torch.save(torchvision.models.resnet18().state_dict(), tmp_path / "teacher.pth")
    common = [sys.executable, str(REPO / "tools" / "distill.py"), "--config", str(REPO / "configs/distill/base.yaml")]
    overrides = [
        f"data.root={data_root}",
        f"teacher.weights={tmp_path / 'teacher.pth'}",
        "teacher.arch=resnet18",
        "student.arch=resnet18",
        "data.image_size=32",
        "data.num_workers=0",
        "optim.batch_size=8",
        "distill.queue_size=64",
        "optim.epochs=1",
        "train.tensorboard=false",
        f"train.output_dir={tmp_path}/out",
    ]
    result = subprocess.run(common + overrides, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "out" / "student.pth").is_file()
    bad = subprocess.run(common + overrides + ["optim.lr=0.1"], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "unknown config key 'optim.lr'" in bad.stderr
    del teacher

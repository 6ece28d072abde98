"""How a distillation ends when the disk fills during a checkpoint, when an exported student is
where --resume expects the training checkpoint, and when the loss is not finite before any
checkpoint: one line each that says what is on disk, and nothing of the run lost."""

import shutil

import pytest
import torch
from full_disk import FullDiskFile
from tiny import make_image_folder
from train_worker import run, tiny_config, tiny_method

from seed_core.atomic import DiskFull
from seed_core.checkpoint_files import safe_load
from seed_core.errors import CheckpointError
from seed_core.runtime import train_state


@pytest.fixture
def data_root(tmp_path):
    return make_image_folder(tmp_path / "images", classes=2, per_class=8)


def test_a_full_disk_at_a_checkpoint_stops_in_one_line_and_the_run_resumes(tmp_path, data_root, monkeypatch):
    out = tmp_path / "run"
    real_atomic_save = train_state.atomic_save

    def disk_full_from_step_4(obj, path, dump=torch.save):
        if obj["step"] >= 4:  # the zip writer meets ENOSPC part-way, as on a real disk
            return real_atomic_save(obj, path, lambda o, f: torch.save(o, FullDiskFile(f, room=2000)))
        return real_atomic_save(obj, path, dump)

    monkeypatch.setattr(train_state, "atomic_save", disk_full_from_step_4)
    with pytest.raises(DiskFull) as info:
        run(data_root, out, "train.checkpoint_every=2")
    message = str(info.value)
    assert f"the disk holding {out / 'checkpoint.pth'} is full: the checkpoint of step 4 was not written" in message
    assert f"the previous one is intact ({out / 'checkpoint.pth'}, step 2)" in message and "--resume" in message
    assert safe_load(out / "checkpoint.pth")["step"] == 2 and not list(out.glob(".*.tmp"))
    assert not (out / ".lock").exists()

    monkeypatch.setattr(train_state, "atomic_save", real_atomic_save)  # space freed
    run(data_root, out, "train.checkpoint_every=2", resume=True)
    assert safe_load(out / "checkpoint.pth")["step"] == 6 and (out / "student.pth").is_file()


def test_an_exported_student_given_to_resume_is_refused_in_one_line(tmp_path, data_root):
    out = tmp_path / "run"
    run(data_root, out, "train.max_steps=2")
    shutil.copy(out / "student.pth", out / "checkpoint.pth")  # the student where the checkpoint was
    config = (out / "config.yaml").read_bytes()
    with pytest.raises(CheckpointError) as info:
        run(data_root, out, resume=True)
    assert str(info.value).startswith(
        f"{out / 'checkpoint.pth'} is a seed-transfer/student-v1 file, not a training checkpoint"
    )
    assert (out / "config.yaml").read_bytes() == config  # nothing of the run was touched


def test_a_nan_loss_before_any_checkpoint_names_none(tmp_path, data_root):
    from distill.trainer import train

    cfg = tiny_config(data_root, tmp_path, "train.checkpoint_every=4")
    method = tiny_method(cfg)
    forward = method.forward
    method.forward = lambda views, teacher_emb=None: (lambda out: (out[0] * float("nan"), out[1]))(
        forward(views, teacher_emb)
    )
    with pytest.raises(FloatingPointError) as info:
        train(cfg, method=method)
    assert "loss is nan at step 0" in str(info.value) and "no checkpoint was written before it" in str(info.value)
    assert "last good checkpoint" not in str(info.value) and not (tmp_path / "checkpoint.pth").exists()


def test_a_hand_edited_tensor_is_named_and_not_blamed_on_the_teacher(tmp_path, data_root):
    run(data_root, tmp_path, "train.max_steps=2")
    state = torch.load(tmp_path / "checkpoint.pth", weights_only=False)
    key = next(k for k, v in state["model"].items() if k.startswith("student.backbone.") and v.dim() == 4)
    state["model"][key] = state["model"][key][:, :, :1, :1].clone()
    torch.save(state, tmp_path / "checkpoint.pth")
    with pytest.raises(CheckpointError) as info:
        run(data_root, tmp_path, resume=True)
    message = str(info.value)
    assert key in message and "there and" in message and "embedding size" not in message and "\n" not in message

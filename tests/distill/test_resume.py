"""--resume continues only the same training: every changed setting that alters it is refused
and named (the teacher file by content, the data as measured), the others are free; a start
that fails leaves config.yaml and run_info.json alone; old checkpoints still resume."""

import logging
import os
import shutil
from pathlib import Path

import pytest
import torch
import yaml
from tiny import TINY, make_image_folder, tiny_cnn
from train_worker import run, tiny_config

from distill.trainer import train
from seed_core.checkpoint_files import safe_load
from seed_core.config import ConfigError

STEPS = 6  # train_worker.BASE: 16 images, batch 8, 3 epochs


@pytest.fixture
def data_root(tmp_path):
    return make_image_folder(tmp_path / "images", classes=2, per_class=8)


def save_moco_teacher(path: Path, out_dim: int, seed: int = 0) -> Path:
    """A MoCo v2 file (module.encoder_q.*, head fc.0/fc.2) on the tiny CNN: embeddings of ``out_dim``."""
    torch.manual_seed(seed)
    encoder = tiny_cnn()[0].state_dict()
    head = {
        "fc.0.weight": torch.randn(16, 16),
        "fc.0.bias": torch.randn(16),
        "fc.2.weight": torch.randn(out_dim, 16),
        "fc.2.bias": torch.randn(out_dim),
    }
    torch.save({"epoch": 200, "state_dict": {f"module.encoder_q.{k}": v for k, v in {**encoder, **head}.items()}}, path)
    return path


def teacher_args(weights: Path) -> list[str]:
    return [f"teacher.weights={weights}", f"teacher.arch={TINY}"]


def refusal(data_root, output_dir, *overrides) -> str:
    with pytest.raises(ConfigError, match="cannot resume") as info:
        run(data_root, output_dir, *overrides, resume=True)
    return str(info.value)


def test_a_changed_teacher_input_size_is_refused_and_named(tmp_path, data_root):
    run(data_root, tmp_path, "train.max_steps=2")
    message = refusal(data_root, tmp_path, "teacher.input_size=24")
    assert "teacher.input_size: None -> 24" in message and str(tmp_path / "checkpoint.pth") in message
    assert "another train.output_dir" in message


def test_every_changed_key_is_listed_in_one_message(tmp_path, data_root):
    run(data_root, tmp_path, "train.max_steps=2")
    message = refusal(
        data_root,
        tmp_path,
        "teacher.input_size=24",
        "train.seed=3",
        "data.image_size=24",
        "teacher.input_norm=none",
        "data.blur=false",
        "optim.base_lr=1.0",
    )
    for change in (
        "teacher.input_size: None -> 24",
        "train.seed: 0 -> 3",
        "data.image_size: 16 -> 24",
        "teacher.input_norm: ImageNet mean/std -> [0, 1] pixels (no normalisation)",
        "data.blur: True -> False",
        "optim.base_lr: 3.0 -> 1.0",
    ):
        assert change in message, change


def test_settings_that_do_not_alter_training_are_free(tmp_path, data_root):
    run(data_root, tmp_path / "full")
    run(data_root, tmp_path / "parts", "train.max_steps=2")
    run(
        data_root,
        tmp_path / "parts",
        "data.num_workers=1",
        "train.log_every=2",
        "train.checkpoint_every=5",
        "train.tensorboard=true",
        "teacher.allow_unsafe_pickle=true",
        "train.channels_last=false",
        resume=True,
    )
    full, parts = (safe_load(tmp_path / name / "student.pth") for name in ("full", "parts"))
    assert parts["meta"]["step"] == STEPS
    assert all(torch.equal(full["state_dict"][k], parts["state_dict"][k]) for k in full["state_dict"])


def test_the_teacher_file_counts_by_content_not_by_path(tmp_path, data_root):
    teacher = save_moco_teacher(tmp_path / "teacher.pth", out_dim=8)
    run(data_root, tmp_path / "out", *teacher_args(teacher), "train.max_steps=2")
    moved = shutil.move(teacher, tmp_path / "moved.pth")
    run(data_root, tmp_path / "out", *teacher_args(moved), "train.max_steps=4", resume=True)  # the same teacher
    assert safe_load(tmp_path / "out" / "checkpoint.pth")["step"] == 4
    other = save_moco_teacher(tmp_path / "other.pth", out_dim=8, seed=1)
    message = refusal(data_root, tmp_path / "out", *teacher_args(other))
    assert "teacher.weights: sha256 " in message and " -> sha256 " in message


def test_the_data_counts_as_measured(tmp_path, data_root):
    run(data_root, tmp_path / "out", "train.max_steps=2")
    shutil.copy(data_root / "class0" / "0.png", data_root / "class0" / "extra.png")  # same root, one more image
    message = refusal(data_root, tmp_path / "out")
    assert "data.length: 16 -> 17" in message and "data.images: sha256 " in message


def test_an_image_replaced_under_its_name_is_refused_and_located(tmp_path, data_root):
    """Same names, same number: only the content signal (sizes and modification times) sees it."""
    run(data_root, tmp_path / "out", "train.max_steps=2")
    replaced = data_root / "class1" / "3.png"  # item 11 of 16: the 11th of the 16 parts of the list
    replaced.write_bytes((data_root / "class0" / "0.png").read_bytes() + b"\0")  # another image, one byte more
    message = refusal(data_root, tmp_path / "out")
    assert "data.length" not in message and "data.images" not in message
    assert "data.content: the sizes of files changed in 1 of 16 parts of the list (images 11-11 from class1/3.png)" in (
        message
    )
    assert message.endswith("and its images as they were, or start a new run in another train.output_dir")


def test_a_file_rewritten_with_the_same_size_is_told_by_its_time(tmp_path, data_root):
    run(data_root, tmp_path / "out", "train.max_steps=2")
    edited = data_root / "class0" / "2.png"
    stat = edited.stat()
    os.utime(edited, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))  # what an in-place edit leaves
    message = refusal(data_root, tmp_path / "out")
    assert "data.content: only the modification times changed in 1 of 16 parts (images 2-2 from class0/2.png" in message
    os.utime(edited, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # put back as it was: the run resumes
    run(data_root, tmp_path / "out", resume=True)


def test_a_checkpoint_without_the_content_signal_resumes_with_a_warning(tmp_path, data_root, caplog):
    """Checkpoints written before data.content: names and number are still checked, content cannot be."""
    run(data_root, tmp_path / "full")
    run(data_root, tmp_path / "old", "train.max_steps=2")
    checkpoint = safe_load(tmp_path / "old" / "checkpoint.pth")
    del checkpoint["fingerprint"]["data.content"]
    torch.save(checkpoint, tmp_path / "old" / "checkpoint.pth")
    with caplog.at_level(logging.WARNING, logger="distill.resume"):
        run(data_root, tmp_path / "old", resume=True)
    assert "predates the data content fingerprint" in caplog.text
    full, old = (safe_load(tmp_path / name / "student.pth")["state_dict"] for name in ("full", "old"))
    assert all(torch.equal(full[k], old[k]) for k in full)


def test_a_start_that_fails_leaves_config_and_run_info_alone(tmp_path, data_root):
    run(data_root, tmp_path, "train.max_steps=2")
    written = {name: (tmp_path / name).read_bytes() for name in ("config.yaml", "run_info.json")}
    refusal(data_root, tmp_path, "teacher.input_size=24")
    assert {name: (tmp_path / name).read_bytes() for name in written} == written
    assert yaml.safe_load(written["config.yaml"])["teacher"]["input_size"] is None
    with pytest.raises(ValueError, match="fewer than one batch"):
        run(data_root, tmp_path / "fresh", "optim.batch_size=20", "distill.queue_size=20")
    assert not (tmp_path / "fresh").exists()


def age_checkpoint(path: Path) -> None:
    """Rewrite ``path`` as checkpoints were written before fingerprints and the newer config keys."""
    checkpoint = safe_load(path)
    del checkpoint["fingerprint"], checkpoint["config"]["teacher"]["input_norm"]
    del checkpoint["config"]["data"]["crop_scale_min"], checkpoint["config"]["data"]["blur"]
    torch.save(checkpoint, path)


def test_a_checkpoint_without_fingerprint_resumes_and_is_checked_on_its_config(tmp_path, data_root):
    run(data_root, tmp_path / "full")
    run(data_root, tmp_path / "old", "train.max_steps=2")
    age_checkpoint(tmp_path / "old" / "checkpoint.pth")
    message = refusal(data_root, tmp_path / "old", "distill.tau_teacher=0.1", "teacher.input_size=24")
    assert "distill.tau_teacher: 0.01 -> 0.1" in message and "teacher.input_size: None -> 24" in message
    run(data_root, tmp_path / "old", resume=True)
    full, old = (safe_load(tmp_path / name / "student.pth")["state_dict"] for name in ("full", "old"))
    assert all(torch.equal(full[k], old[k]) for k in full)


def test_a_teacher_of_another_embedding_size_is_named_not_a_size_mismatch(tmp_path, data_root):
    small, large = save_moco_teacher(tmp_path / "a.pth", 8), save_moco_teacher(tmp_path / "b.pth", 12)
    run(data_root, tmp_path / "out", *teacher_args(small), "train.max_steps=2")
    with_fingerprint = refusal(data_root, tmp_path / "out", *teacher_args(large))
    assert "teacher.weights: sha256 " in with_fingerprint
    age_checkpoint(tmp_path / "out" / "checkpoint.pth")  # only the config to go by: the teacher path changed
    message = refusal(data_root, tmp_path / "out", *teacher_args(large))
    assert "the teacher's embedding size changed (queue.embeddings is 20 x 8 there and 20 x 12 here" in message
    assert f"teacher.weights: '{small}' -> '{large}'" in message and "size mismatch" not in message


def test_an_in_memory_teacher_of_another_size_says_its_content_changed(tmp_path, data_root):
    run(data_root, tmp_path, "train.max_steps=2")
    cfg = tiny_config(data_root, tmp_path)
    torch.manual_seed(0)
    from distill.builder import build_method
    from distill.teacher import FrozenTeacher

    wider = build_method(cfg, teacher=FrozenTeacher(tiny_cnn()[0], torch.nn.Linear(16, 12)))
    with pytest.raises(
        ConfigError,
        match=r"embedding size changed .*no teacher setting changed, so the content of "
        r"teacher.weights=in-memory did",
    ):
        train(cfg, resume=True, method=wider)

"""``teacher.cache_views=K`` (issue 30 item 5): K views per image reused over a long schedule.
Epoch e keeps its own order but draws the crops of epoch e mod K, so the student sees exactly
the crop whose teacher embedding is read from view file e mod K; live, writing and reading runs
are bit-identical, resume is exact, --teacher-only fills K files, and a disk too small for the
per-epoch cache is refused naming what would fit."""

import logging
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from tiny import TINY, make_image_folder, tiny_cnn
from train_worker import BASE, run

from distill.data import ResumableSampler, SeededViews, build_loader, sample_seed
from distill.schema import DistillConfig
from distill.teacher import FrozenTeacher
from distill.teacher_cache import BoundedViewsSampler, TeacherCache
from distill.trainer import build_source, view_transform
from seed_core.checkpoint_files import safe_load
from seed_core.config import ConfigError, load_config

REPO = Path(__file__).parents[2]


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    return make_image_folder(tmp_path_factory.mktemp("images"), classes=2, per_class=8)  # 2 steps per epoch


@pytest.fixture(scope="module")
def teacher_file(tmp_path_factory):
    torch.manual_seed(7)
    path = tmp_path_factory.mktemp("teacher") / "teacher.pth"
    torch.save(tiny_cnn()[0].state_dict(), path)
    return path


def teacher_args(teacher_file, cache=None, views=2):
    args = [f"teacher.weights={teacher_file}", f"teacher.arch={TINY}", "teacher.layout=torchvision"]
    return (
        args + ([f"teacher.cache_dir={cache}"] if cache else []) + ([f"teacher.cache_views={views}"] if views else [])
    )


def cache_record(output_dir):
    return safe_load(Path(output_dir) / "student.pth")["meta"]["teacher_cache"]


def states(output_dir):
    return {
        name: safe_load(Path(output_dir) / name)[key]
        for name, key in (("student.pth", "state_dict"), ("checkpoint.pth", "model"))
    }


def identical(dir_a, dir_b) -> bool:
    a, b = states(dir_a), states(dir_b)
    return all(a[n].keys() == b[n].keys() and all(torch.equal(a[n][k], b[n][k]) for k in a[n]) for n in a)


# ---------------------------------------------------------------- the sampler
@pytest.mark.parametrize("rank, world, first_step", [(0, 1, 0), (1, 2, 0), (0, 1, 1)])
def test_epoch_e_keeps_its_order_and_draws_the_seeds_of_epoch_e_mod_k(rank, world, first_step):
    plain = ResumableSampler(20, 4, seed=3, rank=rank, world_size=world)
    bounded = BoundedViewsSampler(20, 4, 3, rank, world, views=2)
    for epoch in range(5):
        plain.set_position(epoch, first_step)
        bounded.set_position(epoch, first_step)
        keys, plain_keys = list(bounded), list(plain)
        assert [i for i, _ in keys] == [i for i, _ in plain_keys]  # epoch e's order and this rank's share
        assert [s for _, s in keys] == [sample_seed(3, epoch % 2, i) for i, _ in keys]
        assert (keys == plain_keys) == (epoch < 2)  # the first K epochs are the unbounded run's


def test_the_student_sees_the_crop_whose_teacher_embedding_is_read(tmp_path, data_root, teacher_file):
    """View files 0 and 1 filled as --teacher-only fills them; epoch 3's batches (view 1), drawn by
    the bounded sampler, give the teacher exactly the embeddings read for them; epoch 3's own
    seeds would give other crops."""
    cfg = load_config(DistillConfig, None, [*BASE, f"data.root={data_root}", *teacher_args(teacher_file, tmp_path)])
    source = build_source(cfg)
    torch.manual_seed(0)
    teacher = FrozenTeacher(tiny_cnn()[0])
    views = SeededViews(source, view_transform(cfg), num_views=1, with_index=True)
    cache = TeacherCache.for_run(cfg, source, torch.device("cpu"))
    cache.create(16, torch.float32)
    fill = ResumableSampler(len(source), 8, cfg.train.seed, drop_last=False)
    for epoch in range(cache.stored_views(cfg.optim.epochs)):
        fill.set_position(epoch)
        for (images,), indices in build_loader(views, fill, 8, 0, pin_memory=False):
            cache.write(epoch, indices, teacher(images))
    assert sorted(p.name for p in cache.folder.glob("epoch_*")) == [
        "epoch_0000.emb",
        "epoch_0000.written",
        "epoch_0001.emb",
        "epoch_0001.written",
    ]

    for sampler_cls in (BoundedViewsSampler, ResumableSampler):
        kwargs = {"views": 2} if sampler_cls is BoundedViewsSampler else {}
        sampler = sampler_cls(len(source), 8, cfg.train.seed, **kwargs)
        sampler.set_position(3)
        for (images,), indices in build_loader(views, sampler, 8, 0, pin_memory=False):
            assert cache.written(3, indices).all()
            same = torch.equal(teacher(images), cache.read(3, indices))
            assert same == (sampler_cls is BoundedViewsSampler)
    cache.close()


# ---------------------------------------------------------------- runs
def test_live_writing_and_reading_bounded_runs_are_bit_identical(tmp_path, data_root, teacher_file, caplog):
    cache = tmp_path / "cache"
    with caplog.at_level(logging.INFO, logger="distill"):
        run(data_root, tmp_path / "live", *teacher_args(teacher_file))  # 3 epochs on 2 views, no cache
        assert "teacher.cache_views=2 without teacher.cache_dir: nothing is cached" in caplog.text
        run(data_root, tmp_path / "write", *teacher_args(teacher_file, cache))
    assert "teacher cache: 16 x 2 views (reused by 3 epochs) x 16 x 4 bytes = 2.05 kB of float32" in caplog.text
    run(data_root, tmp_path / "read", *teacher_args(teacher_file, cache))
    (folder,) = cache.iterdir()
    assert sorted(p.name for p in folder.glob("*.emb")) == ["epoch_0000.emb", "epoch_0001.emb"]
    # epoch 2 reads view 0, which epoch 0 wrote whole (16 images, 2 full batches)
    assert cache_record(tmp_path / "write") == {
        "folder": str(folder),
        "mode": "completed",
        "read_steps": 2,
        "computed_steps": 4,
    }
    assert cache_record(tmp_path / "read")["mode"] == "read"
    assert identical(tmp_path / "live", tmp_path / "write") and identical(tmp_path / "live", tmp_path / "read")
    run(data_root, tmp_path / "unbounded", *teacher_args(teacher_file, views=None))
    assert not identical(tmp_path / "live", tmp_path / "unbounded")  # the bound really changes the views


def test_a_bounded_run_resumed_in_a_reused_epoch_equals_an_uninterrupted_one(tmp_path, data_root, teacher_file):
    cache = tmp_path / "cache"
    run(data_root, tmp_path / "whole", *teacher_args(teacher_file))
    run(data_root, tmp_path / "parts", *teacher_args(teacher_file, cache), "train.max_steps=5")  # stops in epoch 2
    run(data_root, tmp_path / "parts", *teacher_args(teacher_file, cache), resume=True)
    assert identical(tmp_path / "whole", tmp_path / "parts")


def test_teacher_only_fills_k_views_that_every_epoch_then_reads(tmp_path, data_root, teacher_file, monkeypatch):
    from seed_transfer.cli import distill

    cache = tmp_path / "cache"
    overrides = [*BASE, f"data.root={data_root}", *teacher_args(teacher_file, cache), "optim.epochs=5"]
    assert distill.main(["--config", str(REPO / "configs/distill/base.yaml"), "--teacher-only", *overrides]) == 0
    (folder,) = cache.iterdir()
    assert sorted(p.name for p in folder.glob("*.emb")) == ["epoch_0000.emb", "epoch_0001.emb"]

    def refuse(cfg):
        raise AssertionError("the teacher was built")

    monkeypatch.setattr("distill.trainer.build_teacher", refuse)
    monkeypatch.setattr("distill.builder.build_teacher", refuse)
    run(data_root, tmp_path / "read", *teacher_args(teacher_file, cache), "optim.epochs=5")
    assert cache_record(tmp_path / "read") == {
        "folder": str(folder),
        "mode": "read",
        "read_steps": 10,
        "computed_steps": 0,
    }


def test_a_disk_too_small_for_a_view_per_epoch_is_refused_naming_what_fits(
    tmp_path, data_root, teacher_file, monkeypatch
):
    # 16 images x 16 values x 4 bytes + a mask byte each: 1040 B per view, 3.12 kB for 3 epochs
    monkeypatch.setattr(
        "distill.teacher_cache.storage.shutil.disk_usage",
        lambda path: SimpleNamespace(total=10**6, used=10**6, free=2100),
    )
    with pytest.raises(
        ConfigError,
        match=r"teacher cache: 16 x 3 epochs x 16 x 4 bytes = 3.07 kB of float32 .*; 3.12 kB are still to write "
        r"but the disk has 2.1 kB free; point teacher.cache_dir at a larger disk, or set teacher.cache_dir=null "
        r"to run the teacher live; or store less: teacher.cache_dtype=float16 \(1.58 kB\) or "
        r"teacher.cache_views=2 \(2.08 kB: epoch e trains on view e mod 2\) fits",
    ):
        run(data_root, tmp_path / "unbounded", *teacher_args(teacher_file, tmp_path / "cache", views=None))
    run(data_root, tmp_path / "bounded", *teacher_args(teacher_file, tmp_path / "cache"), "train.max_steps=1")
    assert cache_record(tmp_path / "bounded")["mode"] == "wrote"

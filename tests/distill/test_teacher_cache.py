"""The teacher-embedding cache: cached runs are bit-identical to live ones, the key misses on
any change of teacher, views or data, partial caches are completed (never trusted past what
was written), a complete cache means no teacher at all, --teacher-only fills it, the disk
check refuses what does not fit, and DDP ranks fill one cache together."""

import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image
from tiny import TINY, make_image_folder, tiny_cnn
from train_worker import BASE, run

from distill.builder import build_student
from distill.methods import SEED, L2Distill, SEEDMoCo
from distill.schema import DistillConfig
from distill.teacher import FrozenTeacher
from distill.teacher_cache import TeacherCache, size_text
from distill.trainer import build_source
from seed_core.checkpoint_files import safe_load
from seed_core.config import ConfigError, load_config

HERE = Path(__file__).parent
REPO = HERE.parents[1]
STEPS = 6  # train_worker.BASE: 16 images, batch 8, 3 epochs


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    return make_image_folder(tmp_path_factory.mktemp("images"), classes=2, per_class=8)  # 2 steps per epoch


def save_teacher(path: Path, seed: int) -> Path:
    torch.manual_seed(seed)
    torch.save(tiny_cnn()[0].state_dict(), path)  # a torchvision-style state dict: pooled 16-d features
    return path


@pytest.fixture(scope="module")
def teacher_file(tmp_path_factory):
    return save_teacher(tmp_path_factory.mktemp("teacher") / "teacher.pth", seed=7)


def teacher_args(teacher_file, cache=None):
    args = [f"teacher.weights={teacher_file}", f"teacher.arch={TINY}", "teacher.layout=torchvision"]
    return args + ([f"teacher.cache_dir={cache}"] if cache else [])


def export(output_dir):
    return safe_load(Path(output_dir) / "student.pth")


def cache_record(output_dir):
    return export(output_dir)["meta"]["teacher_cache"]


def assert_identical(dir_a, dir_b):
    """Bit-identical students and training states (queues, momentum encoders included)."""
    for name, key in (("student.pth", "state_dict"), ("checkpoint.pth", "model")):
        a, b = safe_load(Path(dir_a) / name)[key], safe_load(Path(dir_b) / name)[key]
        assert a.keys() == b.keys()
        for k in a:
            assert torch.equal(a[k], b[k]), f"{name}: {k}"


def only_cache_folder(cache_dir) -> Path:
    (folder,) = Path(cache_dir).iterdir()
    return folder


@pytest.fixture
def forbid_teacher(monkeypatch):
    """Call it to make building a teacher fail from then on: a run that still gets through
    read every step from the cache."""

    def refuse(cfg):
        raise AssertionError("the teacher was built")

    def forbid():
        monkeypatch.setattr("distill.builder.build_teacher", refuse)
        monkeypatch.setattr("distill.trainer.build_teacher", refuse)

    return forbid


# ---------------------------------------------------------------- methods
@pytest.mark.parametrize("cls", [SEED, SEEDMoCo, L2Distill])
def test_methods_take_precomputed_teacher_embeddings(cls):
    torch.manual_seed(1)
    teacher = FrozenTeacher(tiny_cnn()[0])
    views = [torch.randn(4, 3, 16, 16), torch.randn(4, 3, 16, 16)]

    def build(with_teacher: bool):
        torch.manual_seed(0)
        student = build_student(TINY, 16)
        t = teacher if with_teacher else None
        return cls(student, t) if cls is L2Distill else cls(student, t, embed_dim=16, queue_size=8)

    live, cached = build(True), build(False)
    loss_live, _ = live(views)
    loss_cached, _ = cached(views, teacher_emb=teacher(views[0]))
    assert torch.equal(loss_live, loss_cached)
    state = {k: v for k, v in live.state_dict().items() if not k.startswith("teacher.")}  # queues after the push
    assert state.keys() == cached.state_dict().keys()
    assert all(torch.equal(v, cached.state_dict()[k]) for k, v in state.items())
    with pytest.raises(ValueError, match="built without a teacher.*pass teacher_emb"):
        cached(views)


# ---------------------------------------------------------------- bit-identical runs
@pytest.mark.parametrize("strategy", ["seed", "seed+moco", "l2"])
def test_cached_runs_are_bit_identical_to_a_live_run(tmp_path, data_root, teacher_file, strategy, caplog):
    common = [f"distill.strategy={strategy}", *teacher_args(teacher_file)]
    cache = tmp_path / "cache"
    run(data_root, tmp_path / "live", *common)
    with caplog.at_level(logging.INFO, logger="distill"):
        run(data_root, tmp_path / "write", *common, f"teacher.cache_dir={cache}")
    assert "written (a new cache)" in caplog.text and "teacher cache: 16 x 3 epochs x 16 x 4 bytes" in caplog.text
    run(data_root, tmp_path / "read", *common, f"teacher.cache_dir={cache}")
    assert cache_record(tmp_path / "write")["mode"] == "wrote"
    assert cache_record(tmp_path / "read") == {
        "folder": str(only_cache_folder(cache)),
        "mode": "read",
        "read_steps": STEPS,
        "computed_steps": 0,
    }
    assert export(tmp_path / "live")["meta"]["teacher_cache"] is None
    assert_identical(tmp_path / "live", tmp_path / "write")
    assert_identical(tmp_path / "live", tmp_path / "read")


def test_a_fully_cached_run_does_not_build_the_teacher(tmp_path, data_root, teacher_file, forbid_teacher, caplog):
    cache = tmp_path / "cache"
    run(data_root, tmp_path / "write", *teacher_args(teacher_file, cache))
    forbid_teacher()
    with caplog.at_level(logging.INFO, logger="distill"):
        run(data_root, tmp_path / "read", *teacher_args(teacher_file, cache))
    assert "read (every step of this run is cached: the teacher is not run)" in caplog.text
    assert_identical(tmp_path / "write", tmp_path / "read")
    # the export records the teacher it was distilled from, as a live run does
    assert export(tmp_path / "read")["meta"]["teacher"] == {"arch": TINY, "weights": str(teacher_file)}


# ---------------------------------------------------------------- the key
def folder_of(data_root, teacher_file, cache, *overrides):
    cfg = load_config(
        DistillConfig, None, [*BASE, f"data.root={data_root}", *teacher_args(teacher_file, cache), *overrides]
    )
    return TeacherCache.for_run(cfg, build_source(cfg), torch.device("cpu")).folder


def test_the_key_misses_on_any_change_of_teacher_views_or_data(tmp_path, data_root, teacher_file):
    base = folder_of(data_root, teacher_file, tmp_path)
    assert folder_of(data_root, teacher_file, tmp_path) == base
    copy = shutil.copy(teacher_file, tmp_path / "same_weights.pth")  # the key is the content, not the path
    assert folder_of(data_root, copy, tmp_path) == base
    other_teacher = save_teacher(tmp_path / "other.pth", seed=8)
    more_images = make_image_folder(tmp_path / "more", classes=2, per_class=9)
    misses = {
        "teacher file": folder_of(data_root, other_teacher, tmp_path),
        "teacher input size": folder_of(data_root, teacher_file, tmp_path, "teacher.input_size=24"),
        "teacher head": folder_of(data_root, teacher_file, tmp_path, "teacher.use_head=false"),
        "image size": folder_of(data_root, teacher_file, tmp_path, "data.image_size=24"),
        "dataset length": folder_of(more_images, teacher_file, tmp_path),
        "augmentation seed": folder_of(data_root, teacher_file, tmp_path, "train.seed=1"),
    }
    assert base not in misses.values() and len(set(misses.values())) == len(misses)
    # what does not change the teacher's embeddings shares the cache
    for neutral in (
        "distill.tau_teacher=0.1",
        "distill.strategy=l2",
        "optim.epochs=5",
        "student.arch=resnet18",
        "optim.batch_size=4",
        "data.num_workers=2",
    ):
        assert folder_of(data_root, teacher_file, tmp_path, neutral) == base, neutral


def test_an_image_replaced_under_its_name_misses_and_new_times_alone_do_not(tmp_path, teacher_file):
    images = make_image_folder(tmp_path / "images", classes=2, per_class=8)
    base = folder_of(images, teacher_file, tmp_path)
    first = sorted(images.rglob("*.*"))[0]
    os.utime(first, ns=(1, 1))  # rewritten in place with the same bytes (a sync without times): the same cache
    assert folder_of(images, teacher_file, tmp_path) == base
    Image.new("RGB", (40, 40), (9, 9, 9)).save(first, format=Image.open(first).format)  # other pixels, same name
    assert folder_of(images, teacher_file, tmp_path) != base


def test_a_changed_seed_misses_and_writes_a_second_cache(tmp_path, data_root, teacher_file):
    cache = tmp_path / "cache"
    run(data_root, tmp_path / "a", *teacher_args(teacher_file, cache), "train.max_steps=1")
    run(data_root, tmp_path / "b", *teacher_args(teacher_file, cache), "train.max_steps=1", "train.seed=3")
    assert cache_record(tmp_path / "b")["mode"] == "wrote" and len(list(cache.iterdir())) == 2


def test_the_size_is_logged_and_a_disk_too_small_is_refused(tmp_path, data_root, teacher_file, monkeypatch):
    assert (
        size_text(1281167, 200, 128, 4)
        == "teacher cache: 1.28M x 200 epochs x 128 x 4 bytes = 131 GB (+ 256 MB of written masks)"
    )
    monkeypatch.setattr(
        "distill.teacher_cache.storage.shutil.disk_usage",
        lambda path: SimpleNamespace(total=10**6, used=10**6 - 100, free=100),
    )
    with pytest.raises(
        ConfigError,
        match=r"teacher.cache_dir=.*cache: teacher cache: 16 x 3 epochs x 16 x 4 bytes = "
        r"3.07 kB .*; 3.12 kB are still to write but the disk has 100 B free; "
        r"point teacher.cache_dir at a larger disk, or set teacher.cache_dir=null",
    ):
        run(data_root, tmp_path / "out", *teacher_args(teacher_file, tmp_path / "cache"))


# ---------------------------------------------------------------- partial caches
def test_an_interrupted_first_run_leaves_a_cache_that_the_next_run_completes(tmp_path, data_root, teacher_file):
    cache = tmp_path / "cache"
    run(data_root, tmp_path / "live", *teacher_args(teacher_file))
    run(data_root, tmp_path / "first", *teacher_args(teacher_file, cache), "train.max_steps=3")  # stops mid-epoch 1
    folder = only_cache_folder(cache)
    masks = [np.fromfile(folder / f"epoch_{e:04d}.written", dtype=np.uint8) for e in (0, 1)]
    assert masks[0].sum() == 16 and masks[1].sum() == 8 and not (folder / "epoch_0002.written").exists()
    assert cache_record(tmp_path / "first") == {
        "folder": str(folder),
        "mode": "wrote",
        "read_steps": 0,
        "computed_steps": 3,
    }

    # a row whose mask byte is not set is never trusted, whatever its data holds
    index = int(np.flatnonzero(masks[0])[0])
    with open(folder / "epoch_0000.written", "r+b") as f:
        f.seek(index)
        f.write(b"\x00")
    with open(folder / "epoch_0000.emb", "r+b") as f:
        f.seek(index * 16 * 4)
        f.write(np.full(16, np.nan, dtype=np.float32).tobytes())

    run(data_root, tmp_path / "second", *teacher_args(teacher_file, cache))
    assert cache_record(tmp_path / "second") == {
        "folder": str(folder),
        "mode": "completed",
        "read_steps": 2,
        "computed_steps": 4,
    }  # the damaged batch was run again
    assert_identical(tmp_path / "live", tmp_path / "second")
    run(data_root, tmp_path / "third", *teacher_args(teacher_file, cache))
    assert cache_record(tmp_path / "third")["mode"] == "read"
    assert_identical(tmp_path / "live", tmp_path / "third")


def test_resume_with_a_cache_equals_an_uninterrupted_live_run(tmp_path, data_root, teacher_file):
    cache = tmp_path / "cache"
    run(data_root, tmp_path / "live", "distill.strategy=seed+moco", *teacher_args(teacher_file))
    run(
        data_root,
        tmp_path / "parts",
        "distill.strategy=seed+moco",
        *teacher_args(teacher_file, cache),
        "train.max_steps=3",
    )
    run(data_root, tmp_path / "parts", "distill.strategy=seed+moco", *teacher_args(teacher_file, cache), resume=True)
    assert cache_record(tmp_path / "parts") == {
        "folder": str(only_cache_folder(cache)),
        "mode": "wrote",
        "read_steps": 0,
        "computed_steps": 3,
    }  # steps 3-5 of the resumed run
    assert_identical(tmp_path / "live", tmp_path / "parts")


# ---------------------------------------------------------------- --teacher-only
def distill_tool():
    """The command line of tools/distill.py (its main)."""
    from seed_transfer.cli import distill

    return distill


def test_teacher_only_fills_the_cache_that_students_then_read(
    tmp_path, data_root, teacher_file, forbid_teacher, capsys
):
    cache = tmp_path / "cache"
    overrides = [*BASE, f"data.root={data_root}", *teacher_args(teacher_file, cache)]
    config = str(REPO / "configs/distill/base.yaml")
    run(data_root, tmp_path / "live", *teacher_args(teacher_file))
    tool = distill_tool()
    assert tool.main(["--config", config, "--teacher-only", *overrides, f"train.output_dir={tmp_path / 'unused'}"]) == 0
    assert capsys.readouterr().out.strip() == f"teacher cache: {only_cache_folder(cache)}"
    assert not (tmp_path / "unused").exists()  # no student run
    assert tool.main(["--config", config, "--teacher-only", *overrides]) == 0  # already complete: nothing to do

    forbid_teacher()
    # a student stopped half-way and resumed reads every step: no teacher is built, the result is a live run's
    run(data_root, tmp_path / "read", *teacher_args(teacher_file, cache), "train.max_steps=3")
    run(data_root, tmp_path / "read", *teacher_args(teacher_file, cache), resume=True)
    assert cache_record(tmp_path / "read")["mode"] == "read"
    assert_identical(tmp_path / "live", tmp_path / "read")


def test_teacher_only_with_its_own_batch_size_covers_every_training_step(
    tmp_path, data_root, teacher_file, forbid_teacher
):
    cache = tmp_path / "cache"
    overrides = [*BASE, f"data.root={data_root}", *teacher_args(teacher_file, cache), "teacher.cache_batch_size=5"]
    assert distill_tool().main(["--config", str(REPO / "configs/distill/base.yaml"), "--teacher-only", *overrides]) == 0
    forbid_teacher()
    run(data_root, tmp_path / "read", *teacher_args(teacher_file, cache))
    assert cache_record(tmp_path / "read")["mode"] == "read"


@pytest.mark.parametrize(
    "args, message",
    [
        (["distill.strategy=moco"], "--teacher-only: distill.strategy=moco has no teacher"),
        ([], "--teacher-only needs a cache to fill: set teacher.cache_dir="),
    ],
)
def test_teacher_only_refusals(tmp_path, data_root, teacher_file, args, message, capsys):
    overrides = [*BASE, f"data.root={data_root}", *teacher_args(teacher_file), *args]
    assert distill_tool().main(["--config", str(REPO / "configs/distill/base.yaml"), "--teacher-only", *overrides]) == 2
    assert message in capsys.readouterr().err


def test_plain_moco_ignores_the_cache(tmp_path, data_root, caplog):
    with caplog.at_level(logging.INFO, logger="distill"):
        run(
            data_root,
            tmp_path / "out",
            "distill.strategy=moco",
            f"teacher.cache_dir={tmp_path / 'cache'}",
            "train.max_steps=1",
        )
    assert "teacher.cache_dir is ignored: distill.strategy=moco has no teacher" in caplog.text
    assert not (tmp_path / "cache").exists() and cache_record(tmp_path / "out") is None


@pytest.mark.parametrize(
    "override, message",
    [
        ("teacher.cache_dir=' '", "teacher.cache_dir is empty"),
        ("teacher.cache_batch_size=0", r"teacher.cache_batch_size must be at least 1 \(or null\), got 0"),
    ],
)
def test_bad_cache_settings_are_refused(data_root, override, message):
    with pytest.raises(ConfigError, match=message):
        load_config(DistillConfig, None, [*BASE, f"data.root={data_root}", override])


# ---------------------------------------------------------------- DDP
@pytest.mark.slow
def test_two_ranks_fill_one_cache_that_a_single_process_reads(tmp_path, data_root, teacher_file):
    """2 gloo processes x 4 images write disjoint rows; a 1-process run of the same global batch reads them all."""
    cache = tmp_path / "cache"
    args = [*teacher_args(teacher_file, cache), "optim.epochs=2"]
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node=2",
        str(HERE / "train_worker.py"),
        str(data_root),
        str(tmp_path / "ddp"),
        *args,
    ]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=REPO)
    assert result.returncode == 0, result.stderr[-3000:]
    assert cache_record(tmp_path / "ddp") == {
        "folder": str(only_cache_folder(cache)),
        "mode": "wrote",
        "read_steps": 0,
        "computed_steps": 4,
    }  # rank 0's batches
    run(data_root, tmp_path / "single", *args)
    assert cache_record(tmp_path / "single")["mode"] == "read"
    run(data_root, tmp_path / "live", *teacher_args(teacher_file), "optim.epochs=2")
    live, single = export(tmp_path / "live")["state_dict"], export(tmp_path / "single")["state_dict"]
    assert all(torch.allclose(live[k].float(), single[k].float(), atol=1e-5) for k in live)

"""``teacher.cache_dtype=float16`` at ViT widths (issue 30 item 5): wide head-less teachers (384-
and 1536-d pooled features, as DINOv2 ViT-S and ViT-g give) cached in float16 take half the disk,
the size line says so, the student's SEED loss moves by less than a stated tolerance from the
float32 cache's, and a run reading the float16 cache is bit-identical to the run that wrote it."""

import csv
import json
import logging
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn as nn
from tiny import TINY, make_image_folder
from train_worker import BASE, run

from distill.models import _REGISTRY, register_backbone
from distill.schema import DistillConfig
from distill.teacher_cache import TeacherCache, size_text
from distill.trainer import build_source
from seed_core.checkpoint_files import safe_load
from seed_core.config import ConfigError, load_config

WIDTHS = (384, 1536)  # DINOv2 ViT-S/14 and ViT-g/14 embeddings (ViT-B 768, ViT-L 1024 lie between)
STEPS = 6  # train_worker.BASE: 16 images, batch 8, 3 epochs
# The largest relative change of the per-step SEED loss that float16 storage may cause. Measured
# on these runs (CPU, 2 shared cores; 6 steps, tau_T = 0.01): at most 9.6e-6 at 384-d and 7.4e-6
# at 1536-d, growing with the steps (7.8e-7 at step 1, 9.6e-6 at step 6 at 384-d) as the two
# students drift apart. The bound, 1e-4, is ten times that, for other BLAS builds and summation
# orders, and five times below float16's own rounding (2^-11 = 4.9e-4 relative per value): the
# teacher's logits <t, q> / tau_T of unit vectors move by about 4.9e-4 / sqrt(d) / tau_T, and the
# cross-entropy averages those independent moves over the queue. A wrong cast (bytes read back
# as another dtype, values not rounded the same way by the writer) moves it by far more.
LOSS_TOLERANCE = 1e-4


def wide_teacher(width: int):
    def build() -> tuple[nn.Module, int]:
        """A tiny conv net whose pooled feature is ``width`` wide, as a head-less ViT teacher's embedding."""
        net = nn.Sequential(
            nn.Conv2d(3, 8, 3, stride=2, padding=1),
            nn.GroupNorm(2, 8),
            nn.ReLU(),
            nn.Conv2d(8, width, 3, stride=2, padding=1),
            nn.GroupNorm(8, width),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
        )
        return net, width

    return build


for _width in WIDTHS:
    if f"tiny_wide_{_width}" not in _REGISTRY:
        register_backbone(f"tiny_wide_{_width}")(wide_teacher(_width))


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    return make_image_folder(tmp_path_factory.mktemp("images"), classes=2, per_class=8)


@pytest.fixture(scope="module")
def teachers(tmp_path_factory):
    folder = tmp_path_factory.mktemp("teachers")
    files = {}
    for width in WIDTHS:
        torch.manual_seed(width)
        files[width] = folder / f"wide_{width}.pth"
        torch.save(wide_teacher(width)()[0].state_dict(), files[width])
    return files


def teacher_args(teacher_file: Path, width: int, cache: Path, dtype: str) -> list[str]:
    return [
        f"teacher.weights={teacher_file}",
        f"teacher.arch=tiny_wide_{width}",
        "teacher.layout=torchvision",
        "teacher.use_head=false",
        f"teacher.cache_dir={cache}",
        f"teacher.cache_dtype={dtype}",
    ]


def losses(output_dir: Path) -> np.ndarray:
    with open(output_dir / "metrics.csv") as f:
        return np.array([float(row["loss"]) for row in csv.DictReader(f)])


def assert_identical(dir_a: Path, dir_b: Path) -> None:
    for name, key in (("student.pth", "state_dict"), ("checkpoint.pth", "model")):
        a, b = safe_load(dir_a / name)[key], safe_load(dir_b / name)[key]
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), name


def only_folder(cache: Path) -> Path:
    (folder,) = cache.iterdir()
    return folder


@pytest.mark.parametrize("width", WIDTHS)
def test_a_float16_cache_moves_the_seed_loss_by_less_than_the_tolerance(tmp_path, data_root, teachers, width, caplog):
    common = [f"student.arch={TINY}", "distill.strategy=seed"]
    run(data_root, tmp_path / "fp32", *common, *teacher_args(teachers[width], width, tmp_path / "c32", "float32"))
    with caplog.at_level(logging.INFO, logger="distill"):
        run(data_root, tmp_path / "fp16", *common, *teacher_args(teachers[width], width, tmp_path / "c16", "float16"))
    # the size line says the dtype and its size: half of float32's
    assert f"teacher cache: 16 x 3 epochs x {width} x 2 bytes = " in caplog.text
    assert " of float16 (+ 48 B of written masks)" in caplog.text

    full, half = losses(tmp_path / "fp32"), losses(tmp_path / "fp16")
    assert len(full) == len(half) == STEPS and np.isfinite(full).all()
    relative = np.abs(half - full) / np.abs(full)
    print(f"width {width}: relative change of the SEED loss per step {np.array2string(relative, precision=2)}")
    assert relative.max() < LOSS_TOLERANCE
    assert relative.max() > 0  # the float16 values were really rounded (a float32 copy would not move it)

    folder16, folder32 = only_folder(tmp_path / "c16"), only_folder(tmp_path / "c32")
    meta = json.loads((folder16 / "meta.json").read_text())
    assert (meta["dtype"], meta["teacher_dtype"], meta["embed_dim"]) == ("float16", "float32", width)
    assert "teacher_dtype" not in json.loads((folder32 / "meta.json").read_text())  # float32 caches as before
    emb16, emb32 = folder16 / "epoch_0000.emb", folder32 / "epoch_0000.emb"
    assert emb16.stat().st_size == 16 * width * 2 and emb32.stat().st_size == 16 * width * 4
    stored16 = np.fromfile(emb16, dtype=np.float16).astype(np.float32)
    stored32 = np.fromfile(emb32, dtype=np.float32)
    written = np.fromfile(folder16 / "epoch_0000.written", dtype=np.uint8).repeat(width) == 1
    assert np.array_equal(stored16[written], stored32[written].astype(np.float16).astype(np.float32))


def test_a_run_reading_a_float16_cache_is_bit_identical_to_the_run_that_wrote_it(tmp_path, data_root, teachers):
    width = WIDTHS[0]
    args = [f"student.arch={TINY}", *teacher_args(teachers[width], width, tmp_path / "cache", "float16")]
    run(data_root, tmp_path / "write", *args)
    run(data_root, tmp_path / "read", *args)
    record = safe_load(tmp_path / "read" / "student.pth")["meta"]["teacher_cache"]
    assert record["mode"] == "read" and record["read_steps"] == STEPS
    assert_identical(tmp_path / "write", tmp_path / "read")


def test_the_stored_dtype_is_part_of_the_key(data_root, teachers, tmp_path):
    def folder(*overrides):
        cfg = load_config(
            DistillConfig,
            None,
            [*BASE, f"data.root={data_root}", *teacher_args(teachers[384], 384, tmp_path, "float32"), *overrides],
        )
        return TeacherCache.for_run(cfg, build_source(cfg), torch.device("cpu")).folder

    assert folder("teacher.cache_dtype=float16") != folder()  # a float32 run never reads rounded values
    assert folder("teacher.cache_views=2") == folder()  # view j's file is the same with or without a bound


def test_size_lines_of_imagenet_at_vit_widths():
    """The sizes docs/distillation.md quotes: 1.28M images, one view, 1024-d (ViT-L), both dtypes."""
    assert size_text(1281167, 1, 1024, 4, "float32") == (
        "teacher cache: 1.28M x 1 epochs x 1024 x 4 bytes = 5.25 GB of float32 (+ 1.28 MB of written masks)"
    )
    assert size_text(1281167, 200, 1024, 2, "float16", views=4) == (
        "teacher cache: 1.28M x 4 views (reused by 200 epochs) x 1024 x 2 bytes = 10.5 GB of float16 "
        "(+ 5.12 MB of written masks)"
    )


@pytest.mark.parametrize(
    "override, message",
    [
        ("teacher.cache_dtype=bfloat16", r"teacher.cache_dtype='bfloat16': choose one of float32, float16"),
        ("teacher.cache_views=0", r"teacher.cache_views must be at least 1 \(or null\), got 0"),
    ],
)
def test_bad_cache_dtype_and_views_are_refused(data_root, override, message):
    with pytest.raises(ConfigError, match=message):
        load_config(DistillConfig, None, [*BASE, f"data.root={data_root}", override])

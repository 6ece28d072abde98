"""Bad images never end a distillation: an empty file, a text file named .jpg, a decompression
bomb (found by the up-front scan) and a truncated JPEG (found while loading) among 40 good
images are skipped, each named once, in run_info.json and the checkpoint; each is replaced
by the next readable image, so a resumed run (and a 2-process one) ends bit-identical to the
uninterrupted one; past data.max_bad_images the run stops with one line."""

import io
import json
import logging
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from tiny import TINY, make_image_folder, tiny_cnn
from train_worker import run, tiny_config

from distill.data import SeededViews, build_source_dataset, mocov2_transform
from distill.trainer import precompute_teacher
from seed_core.bad_images import bad_image_limit, header_fault, open_skipping_bad_images
from seed_core.checkpoint_files import safe_load
from seed_core.config import ConfigError
from seed_core.errors import DataError

HERE = Path(__file__).parent
REPO = HERE.parents[1]
# ImageFolder sorts class0/<0..19>.png, then the three bad .jpg, then class1/<0..19>.png and bomb.png:
# item 20 (empty) is read as 23, passing over notes.jpg and truncated.jpg; the bomb, last, wraps to 0.
BAD = {20: "class0/empty.jpg", 21: "class0/notes.jpg", 22: "class0/truncated.jpg", 43: "class1/bomb.png"}
SCANNED = {20, 21, 43}  # the truncated JPEG's header is fine: only decoding finds it


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def bomb_png(width: int = 20000, height: int = 20000) -> bytes:
    """A PNG whose header claims width x height RGB pixels (400 megapixels): PIL refuses to open it."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + png_chunk(b"IDAT", zlib.compress(b"\0" * 64))


def truncated_jpeg(seed: int = 0) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 256, size=(32, 32, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "JPEG")
    return buffer.getvalue()[: len(buffer.getvalue()) // 2]


@pytest.fixture(scope="module")
def bad_folder(tmp_path_factory) -> Path:
    """40 good 32 px PNGs in 2 classes and the 4 bad files of ``BAD``."""
    root = make_image_folder(tmp_path_factory.mktemp("bad_images"), classes=2, per_class=20, size=32)
    (root / BAD[20]).write_bytes(b"")
    (root / BAD[21]).write_text("to do: download the rest of the photos\n")
    (root / BAD[22]).write_bytes(truncated_jpeg())
    (root / BAD[43]).write_bytes(bomb_png())
    return root


def run_info(output_dir: Path) -> dict:
    return json.loads((output_dir / "run_info.json").read_text())


def checkpoint(output_dir: Path) -> dict:
    return safe_load(output_dir / "checkpoint.pth")


def bad_paths(records: list[dict], root: Path) -> dict[int, str]:
    return {r["index"]: Path(r["path"]).relative_to(root).as_posix() for r in records}


def assert_same_training(a: Path, b: Path) -> None:
    for name in ("checkpoint.pth", "student.pth"):
        key = "model" if name == "checkpoint.pth" else "state_dict"
        state_a, state_b = safe_load(a / name)[key], safe_load(b / name)[key]
        assert state_a.keys() == state_b.keys()
        for k in state_a:
            assert torch.equal(state_a[k], state_b[k]), (name, k)


# --- reading ------------------------------------------------------------------------------------


def test_the_header_scan_finds_empty_non_image_and_oversized_files(bad_folder):
    limit = Image.MAX_IMAGE_PIXELS
    assert header_fault(str(bad_folder / BAD[20]), limit) == "empty file (0 bytes)"
    assert header_fault(str(bad_folder / BAD[21]), limit).startswith("UnidentifiedImageError: cannot identify")
    assert "DecompressionBombError: Image size (400000000 pixels)" in header_fault(str(bad_folder / BAD[43]), limit)
    assert header_fault(str(bad_folder / BAD[22]), limit) is None  # found only when decoded
    assert header_fault(str(bad_folder / "class0/0.png"), limit) is None
    # PIL only warns between MAX_IMAGE_PIXELS and twice that; the scan counts the warning's images too
    assert "1024 pixels" not in (header_fault(str(bad_folder / "class0/0.png"), 1000) or "")
    assert header_fault(str(bad_folder / "class0/0.png"), 1000).startswith("32 x 32 = 0.0 megapixels, more than")


@pytest.mark.parametrize(
    "max_bad_images, length, limit",
    [(0.001, 44, 1), (0.001, 1_281_167, 1282), (0.1, 30, 3), (0.0, 44, 0), (5.0, 44, 5), (0.5, 44, 22)],
)
def test_the_limit_is_a_fraction_rounded_up_or_a_count(max_bad_images, length, limit):
    assert bad_image_limit(max_bad_images, length) == limit


def test_a_bad_item_reads_the_next_readable_one_wrapping_around(bad_folder):
    source = build_source_dataset("imagefolder", root=str(bad_folder))
    images, bad = open_skipping_bad_images(source, 4, "test")
    assert bad_paths(bad.state(), bad_folder) == {i: BAD[i] for i in sorted(SCANNED)}
    assert [images.read(i)[1] for i in (19, 20, 21, 22, 23, 42, 43)] == [19, 23, 23, 23, 23, 42, 0]
    with pytest.raises(OSError, match="truncated"):
        source[22]  # what the loader met before: a traceback at some step


def test_a_file_list_names_its_missing_and_bad_files(tmp_path, bad_folder):
    listing = tmp_path / "train.txt"
    listing.write_text(f"class0/0.png 3\n{BAD[20]} 3\n# a comment\nclass0/gone.png 1\nclass0/1.png 0\n")
    source = build_source_dataset("filelist", root=str(bad_folder), file_list=str(listing))
    images, bad = open_skipping_bad_images(source, 2, "test")
    assert {r["index"]: r["reason"].split(":")[0] for r in bad.state()} == {
        1: "empty file (0 bytes)",
        2: "FileNotFoundError",
    }
    assert bad.state()[1]["path"] == str(bad_folder / "class0/gone.png")
    assert [images.read(i)[1] for i in range(4)] == [0, 3, 3, 3]


def test_a_skipped_item_keeps_its_own_augmentation_seed(bad_folder):
    images, _ = open_skipping_bad_images(build_source_dataset("imagefolder", root=str(bad_folder)), 4, "test")
    views = SeededViews(images, mocov2_transform(16), num_views=1, with_index=True)
    (view,), index, read_index = views[(20, 1234)]
    assert (index, read_index) == (20, 23)
    plain = SeededViews(images.source, mocov2_transform(16), num_views=1)
    assert torch.equal(view, plain[(23, 1234)][0])  # image 23, seed of item 20
    assert not torch.equal(view, plain[(23, 99)][0])


def test_a_source_without_files_is_checked_while_loading():
    class Photos(torch.utils.data.Dataset):
        def __len__(self):
            return 3

        def __getitem__(self, index):
            if index == 1:
                raise OSError("image file is truncated (7 bytes not processed)")
            return Image.new("RGB", (8, 8))

    images, bad = open_skipping_bad_images(Photos(), 1, "test")
    assert images.read(1)[1] == 2 and not bad.records  # nothing to scan
    assert bad.note(torch.tensor([0, 1]), torch.tensor([0, 2]), step=5)
    assert bad.state() == [
        {
            "index": 1,
            "path": "item 1 of Photos",
            "reason": "OSError: image file is truncated (7 bytes not processed)",
            "found": "load",
            "step": 5,
        }
    ]
    assert not bad.note(torch.tensor([1]), torch.tensor([2]), step=6)  # counted once


# --- training -----------------------------------------------------------------------------------


def test_a_run_over_bad_images_finishes_and_names_each_once(tmp_path, bad_folder, caplog):
    with caplog.at_level(logging.WARNING, logger="seed_core.bad_images"):
        run(bad_folder, tmp_path, "data.max_bad_images=4")
    assert (tmp_path / "student.pth").is_file()
    warned = [r.getMessage() for r in caplog.records if r.getMessage().startswith("skipped bad image")]
    assert len(warned) == 4
    for index, name in BAD.items():
        assert sum(name in line for line in warned) == 1, (name, warned)
    info = run_info(tmp_path)["bad_images"]
    assert (info["count"], info["limit"], info["max_bad_images"]) == (4, 4, 4.0)
    assert bad_paths(info["images"], bad_folder) == BAD
    found = {r["index"]: (r["found"], r["step"]) for r in info["images"]}
    assert {i for i, (kind, _) in found.items() if kind == "scan"} == SCANNED
    assert found[22][0] == "load" and isinstance(found[22][1], int)
    assert "truncated" in next(r["reason"] for r in info["images"] if r["index"] == 22)
    assert checkpoint(tmp_path)["bad_images"] == info["images"]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, bad_folder) -> Path:
    out = tmp_path_factory.mktemp("uninterrupted")
    run(bad_folder, out, "data.max_bad_images=4")
    return out


def met_at(output_dir: Path) -> int:
    """The step whose batch met the truncated JPEG first."""
    return next(r["step"] for r in run_info(output_dir)["bad_images"]["images"] if r["index"] == 22)


@pytest.mark.parametrize("stop", ["before", "after"])
def test_a_resumed_run_ends_bit_identical_with_the_same_skips(tmp_path, bad_folder, uninterrupted, stop):
    """Stopped before or after the step that meets the truncated JPEG: the resumed run finds it
    again, or takes it over from the checkpoint."""
    step = met_at(uninterrupted) + (0 if stop == "before" else 1)
    run(bad_folder, tmp_path, "data.max_bad_images=4", f"train.max_steps={step}")
    assert checkpoint(tmp_path)["step"] == step and len(checkpoint(tmp_path)["bad_images"]) == 3 + (stop == "after")
    run(bad_folder, tmp_path, "data.max_bad_images=4", resume=True)
    assert_same_training(uninterrupted, tmp_path)
    assert checkpoint(tmp_path)["bad_images"] == checkpoint(uninterrupted)["bad_images"]
    assert run_info(tmp_path)["bad_images"] == run_info(uninterrupted)["bad_images"]


def test_past_the_limit_a_run_stops_and_resumes_with_a_higher_one(tmp_path, bad_folder, uninterrupted):
    """The scan's 3 fit data.max_bad_images=3; the truncated JPEG, the 4th, stops the run at the
    step that meets it. Raised to 4 (free to change on --resume), the run ends as if never stopped."""
    with pytest.raises(DataError) as stopped:
        run(bad_folder, tmp_path, "data.max_bad_images=3", "train.checkpoint_every=1")
    message = str(stopped.value)
    assert "4 bad images in data.root=" in message and "more than the 3 that data.max_bad_images=3 allows" in message
    assert checkpoint(tmp_path)["step"] == met_at(uninterrupted)
    assert run_info(tmp_path)["bad_images"]["count"] == 4  # the 4th is recorded before the run stops
    run(bad_folder, tmp_path, "data.max_bad_images=4", "train.checkpoint_every=1", resume=True)
    assert_same_training(uninterrupted, tmp_path)


def test_loader_workers_skip_as_the_main_process_does(tmp_path, bad_folder, uninterrupted):
    """Workers replace bad items in their own processes; the batch says which item was read."""
    run(bad_folder, tmp_path, "data.max_bad_images=4", "data.num_workers=2")
    assert_same_training(uninterrupted, tmp_path)
    assert run_info(tmp_path)["bad_images"] == run_info(uninterrupted)["bad_images"]


def test_a_teacher_cache_filled_over_bad_images_trains_the_live_run(tmp_path, bad_folder, caplog):
    """--teacher-only skips the same images as training, so a student reading its cache is the live one."""
    torch.manual_seed(7)
    torch.save(tiny_cnn()[0].state_dict(), tmp_path / "teacher.pth")  # torchvision-style: pooled 16-d features
    teacher = [f"teacher.weights={tmp_path / 'teacher.pth'}", f"teacher.arch={TINY}", "teacher.layout=torchvision"]
    cached = [*teacher, f"teacher.cache_dir={tmp_path / 'cache'}", "data.max_bad_images=4"]
    run(bad_folder, tmp_path / "live", *teacher, "data.max_bad_images=4")
    with caplog.at_level(logging.WARNING, logger="seed_core.bad_images"):
        precompute_teacher(tiny_config(bad_folder, tmp_path / "unused", *cached))
    assert sum("truncated.jpg (met while loading)" in r.getMessage() for r in caplog.records) == 1
    run(bad_folder, tmp_path / "read", *cached)
    assert safe_load(tmp_path / "read" / "student.pth")["meta"]["teacher_cache"]["mode"] == "read"
    assert_same_training(tmp_path / "live", tmp_path / "read")


def test_the_limit_is_a_fraction_or_a_whole_number(bad_folder, tmp_path):
    with pytest.raises(ConfigError, match="data.max_bad_images=2.5: give a fraction"):
        tiny_config(bad_folder, tmp_path, "data.max_bad_images=2.5")
    with pytest.raises(ConfigError, match="data.max_bad_images must be at least 0, got -1.0"):
        tiny_config(bad_folder, tmp_path, "data.max_bad_images=-1")


@pytest.mark.slow
def test_two_processes_skip_the_same_images_as_one(tmp_path, bad_folder, uninterrupted):
    """Each rank scans half the files and meets the truncated JPEG in its own batches or not:
    they share what they found, so both keep the record of the single process and train as it."""
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    cmd += [str(HERE / "train_worker.py"), str(bad_folder), str(tmp_path), "data.max_bad_images=4"]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=REPO)
    assert result.returncode == 0, result.stderr[-3000:]
    assert checkpoint(tmp_path)["bad_images"] == checkpoint(uninterrupted)["bad_images"]
    single, ddp = checkpoint(uninterrupted)["model"], checkpoint(tmp_path)["model"]
    assert all(torch.allclose(single[k].float(), ddp[k].float(), atol=1e-5) for k in single)


# --- the command line ---------------------------------------------------------------------------


def distill(tmp_path: Path, root: Path, *overrides: str) -> subprocess.CompletedProcess:
    """tools/distill.py, plain MoCo (no teacher file) on a ResNet-18 at 16 px, batch 8, one epoch."""
    settings = [
        f"data.root={root}",
        "distill.strategy=moco",
        "student.arch=resnet18",
        "data.image_size=16",
        "data.num_workers=0",
        "optim.batch_size=8",
        "distill.queue_size=16",
        "optim.epochs=1",
        "train.tensorboard=false",
        f"train.output_dir={tmp_path / 'out'}",
        *overrides,
    ]
    return subprocess.run(
        [
            sys.executable,
            str(REPO / "tools/distill.py"),
            "--config",
            str(REPO / "configs/distill/base.yaml"),
            *settings,
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )


def error_line(result: subprocess.CompletedProcess) -> str:
    """Exit 2, no traceback, and the last stderr line the only ``error:`` line."""
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2, result.stderr[-3000:]
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    assert [line for line in lines if line.startswith("error: ")] == lines[-1:], result.stderr[-3000:]
    return lines[-1]


def test_more_bad_images_than_allowed_stop_before_the_run_starts(tmp_path, bad_folder):
    line = error_line(distill(tmp_path, bad_folder))  # default 0.001 of 44 images: 1
    assert "3 bad images in data.root=" in line
    assert "more than the 1 that data.max_bad_images=0.001 of its 44 images allows" in line
    assert "empty.jpg" in line and "raise data.max_bad_images" in line
    assert not (tmp_path / "out").exists()  # nothing written for a run that never started


def test_the_bad_image_past_the_limit_stops_a_running_distillation(tmp_path, bad_folder):
    result = distill(tmp_path, bad_folder, "data.max_bad_images=3")
    line = error_line(result)
    assert "4 bad images in data.root=" in line and "more than the 3 that data.max_bad_images=3 allows" in line
    warned = [line for line in result.stderr.splitlines() if "skipped bad image" in line]
    assert len(warned) == 4 and "truncated.jpg (met at step" in warned[-1]

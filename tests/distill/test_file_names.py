"""A file name that is not valid UTF-8 (``caf\\xe9.png``, written by a Latin-1 system) is an ordinary
file: Python hands it over as surrogate-escaped text (PEP 383) and gives the OS its bytes back, so
every reader opens it; the fingerprints hash its bytes on disk, the warnings and ``run_info.json``
name it (as ``\\udce9``), and a distillation through the command line ends normally."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch
import torchvision
from tiny import make_image_folder
from train_worker import run

from distill.data import build_source_dataset, source_content
from seed_core.checkpoint_files import safe_load
from seed_transfer.datasets import build_dataset

REPO = Path(__file__).parents[2]
LATIN1 = b"caf\xe9.png"  # not valid UTF-8


def rename_to_latin1(path: Path) -> Path:
    """``path`` renamed to ``LATIN1`` in its folder, by bytes; the new path as Python names it."""
    target = os.path.join(os.fsencode(path.parent), LATIN1)
    os.rename(os.fsencode(path), target)
    return Path(os.fsdecode(target))


def test_every_reader_opens_a_non_utf8_name(tmp_path):
    root = make_image_folder(tmp_path / "images", classes=2, per_class=4)
    pixels = np.asarray(build_source_dataset("imagefolder", root=str(root))[0])  # class0/0.png
    renamed = rename_to_latin1(root / "class0" / "0.png")
    assert "\udce9" in str(renamed)  # how Python spells the byte 0xe9 of a name

    source = build_source_dataset("imagefolder", root=str(root))
    index = [source.image_path(i) for i in range(len(source))].index(str(renamed))
    assert np.array_equal(np.asarray(source[index]), pixels)
    assert len(source.fingerprint()) == 64 and source_content(source)["files"] == 8

    listing = tmp_path / "list.txt"
    listing.write_bytes(b"class0/" + LATIN1 + b"\nclass0/1.png\n")  # a file list written on the same system
    listed = build_source_dataset("filelist", root=str(root), file_list=str(listing))
    assert listed.image_path(0) == str(renamed) and np.array_equal(np.asarray(listed[0]), pixels)

    for split in ("train", "test"):
        os.makedirs(tmp_path / "cls" / split, exist_ok=True)
        os.symlink(root / "class0", tmp_path / "cls" / split / "class0")
    test = build_dataset("imagefolder", tmp_path / "cls", "test")
    assert np.array_equal(
        np.asarray(test[test.image_paths.index(tmp_path / "cls/test/class0" / renamed.name)][0]), pixels
    )


def test_the_fingerprint_hashes_the_bytes_of_the_name(tmp_path):
    """Two folders that differ by one byte of a name have different fingerprints (the name is not
    replaced by a placeholder), and a name the OS holds as UTF-8 hashes as before."""
    one = make_image_folder(tmp_path / "one", classes=2, per_class=4)
    two = make_image_folder(tmp_path / "two", classes=2, per_class=4)
    before = build_source_dataset("imagefolder", root=str(one)).fingerprint()
    rename_to_latin1(one / "class0" / "0.png")
    os.rename(os.fsencode(two / "class0" / "0.png"), os.path.join(os.fsencode(two / "class0"), b"caf\xe8.png"))
    fingerprints = {build_source_dataset("imagefolder", root=str(root)).fingerprint() for root in (one, two)}
    assert len(fingerprints) == 2 and before not in fingerprints


def test_a_bad_image_with_a_non_utf8_name_is_named_and_recorded(tmp_path, caplog):
    root = make_image_folder(tmp_path / "images", classes=2, per_class=8)
    bad = rename_to_latin1(root / "class0" / "0.png")
    bad.write_bytes(b"")
    with caplog.at_level("WARNING", logger="seed_core.bad_images"):
        run(root, tmp_path / "out", "data.max_bad_images=1", "train.max_steps=2")
    assert f"skipped bad image {bad} (found by the scan): empty file (0 bytes)" in caplog.text
    info = json.loads((tmp_path / "out" / "run_info.json").read_text())  # ASCII JSON: \udce9 escaped
    assert [record["path"] for record in info["bad_images"]["images"]] == [str(bad)]
    assert os.fsencode(info["bad_images"]["images"][0]["path"]).endswith(LATIN1)  # back to the bytes on disk
    run(root, tmp_path / "out", "data.max_bad_images=1", resume=True)  # the fingerprint matches itself
    assert safe_load(tmp_path / "out" / "checkpoint.pth")["bad_images"][0]["path"] == str(bad)


def test_a_distillation_through_the_command_line_ends_normally(tmp_path):
    root = make_image_folder(tmp_path / "images", classes=2, per_class=4)
    rename_to_latin1(root / "class0" / "0.png").write_bytes(b"")  # named in a warning on stderr
    torch.manual_seed(0)
    teacher = tmp_path / "mobilenet_v3_small.pth"
    torch.save(torchvision.models.mobilenet_v3_small().state_dict(), teacher)
    settings = {
        "data.root": root,
        "data.max_bad_images": 1,
        "teacher.weights": teacher,
        "teacher.arch": "mobilenet_v3_small",
        "student.arch": "resnet18",
        "data.image_size": 32,
        "data.num_workers": 0,
        "optim.batch_size": 4,
        "distill.queue_size": 8,
        "optim.epochs": 1,
        "train.tensorboard": "false",
        "train.output_dir": tmp_path / "out",
    }
    result = subprocess.run(
        [sys.executable, str(REPO / "tools/distill.py"), "--config", str(REPO / "configs/distill/base.yaml")]
        + [f"{key}={value}" for key, value in settings.items()],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr[-3000:]
    assert "skipped bad image" in result.stderr and "caf\\udce9.png" in result.stderr  # stderr escapes it
    assert (tmp_path / "out" / "student.pth").is_file()

"""The stamps reader (named apart from tests/distill/test_stamps.py: test modules share one namespace)."""

import re
from pathlib import Path

import numpy as np
import pytest

import fake_stamps
from distill.stamps import DEFAULT_ROOT, EVAL_CATEGORIES, unlabelled_stamps
from seed_transfer.datasets import build_dataset, dataset_info


def test_classes_labels_and_composited_images(tmp_path):
    root = fake_stamps.make_stamps(tmp_path)
    train = build_dataset("stamps", root, "train")
    assert train.classes == list(EVAL_CATEGORIES) and dataset_info("stamps").metric == "top1"
    for path, target in zip(train.image_paths, train.targets):
        assert path.relative_to(root).as_posix().startswith(EVAL_CATEGORIES[target] + "/")
    image, _ = train[0]
    assert image.mode == "RGB" and image.getpixel((0, 0)) == (255, 255, 255)  # transparent -> white


def test_split_is_fixed_stratified_and_disjoint(tmp_path):
    root = fake_stamps.make_stamps(tmp_path)
    train, test = build_dataset("stamps", root, "train"), build_dataset("stamps", root, "test")
    assert len(train) == len(test) == 12  # 24 photos, 50/50
    assert np.bincount(train.targets).tolist() == np.bincount(test.targets).tolist() == [2] + [1] * 8 + [2]
    train_paths, test_paths = set(train.image_paths), set(test.image_paths)
    assert not train_paths & test_paths
    assert {p.relative_to(root).as_posix() for p in train_paths | test_paths} == set(fake_stamps.photo_paths())
    assert not {p.relative_to(root).as_posix() for p in train_paths | test_paths} & set(unlabelled_stamps(root))
    again = build_dataset("stamps", root, "train")
    assert again.image_paths == train.image_paths and np.array_equal(again.targets, train.targets)
    assert build_dataset("stamps", root, "trainval").image_paths == train.image_paths  # no official val


def test_missing_root_and_empty_tree(tmp_path):
    with pytest.raises(FileNotFoundError, match=re.escape(
            f"Tux Paint stamps not found at {tmp_path / 'nowhere'}; install them with `apt-get install "
            f"--no-install-recommends tuxpaint-stamps-default`")):
        build_dataset("stamps", tmp_path / "nowhere", "train")
    fake_stamps.write_stamp(tmp_path / "symbols" / "a.png", seed=0)
    with pytest.raises(FileNotFoundError, match=re.escape("stamps: expected the photo categories (animals/birds")):
        build_dataset("stamps", tmp_path, "test")


@pytest.mark.skipif(not Path(DEFAULT_ROOT).is_dir(), reason="tuxpaint-stamps-default is not installed")
def test_the_installed_stamps():
    train, test = build_dataset("stamps", None, "train"), build_dataset("stamps", ".", "test")
    assert str(train.image_paths[0]).startswith(DEFAULT_ROOT)
    assert 100 <= len(train) <= len(test) <= len(train) + 1  # 111 / 112 in Debian's 2022.06.04-1
    counts = np.bincount(np.concatenate([train.targets, test.targets]), minlength=len(EVAL_CATEGORIES))
    assert counts.min() >= 7 and np.all(np.abs(np.bincount(train.targets) - counts / 2) <= 1)  # stratified
    assert not any("/cartoon/" in str(path) for path in train.image_paths + test.image_paths)
    assert len(unlabelled_stamps()) >= 500
    image, _ = test[0]
    assert image.mode == "RGB" and min(image.size) >= 32

import re

import numpy as np
import pytest

import fake_trees
from seed_transfer.datasets import build_dataset
from seed_transfer.datasets.caltech101 import split_class


def test_caltech101_30_random_train_images_per_class(tmp_path):
    root = fake_trees.make_caltech101(tmp_path)
    train, test = build_dataset("caltech101", root, "train"), build_dataset("caltech101", root, "test")
    assert train.classes == ["Faces", "Faces_easy", "accordion"]  # BACKGROUND_Google dropped
    assert (train.targets == 2).sum() == 30 and (test.targets == 2).sum() == 2
    assert (train.targets == 0).sum() == 3 and (test.targets == 0).sum() == 1  # <= 30 images: one left for test
    assert not set(train.image_paths) & set(test.image_paths)
    accordion = sorted((root / "accordion").iterdir())
    assert set(train.image_paths + test.image_paths) >= set(accordion)
    held_out = [p for p in test.image_paths if p.parent.name == "accordion"]
    assert held_out != accordion[-2:]  # a random draw, not the last files


def test_caltech101_split_is_deterministic(tmp_path):
    root = fake_trees.make_caltech101(tmp_path)
    first = build_dataset("caltech101", root, "train").image_paths
    assert build_dataset("caltech101", tmp_path, "train").image_paths == first
    files = sorted((root / "accordion").iterdir())
    held_out = sorted(np.random.default_rng(0).permutation(32)[30:])  # the documented rule
    assert split_class(files)["test"] == [files[i] for i in held_out]
    # a class's split depends only on its own files
    (tmp_path / "101_ObjectCategories" / "Faces" / "image_0004.jpg").unlink()
    again = build_dataset("caltech101", root, "train").image_paths
    assert [p for p in again if p.parent.name == "accordion"] == [p for p in first if p.parent.name == "accordion"]


def test_caltech101_missing_folder_and_tiny_class(tmp_path):
    with pytest.raises(FileNotFoundError, match=re.escape(f"caltech101: expected the category folder {tmp_path}/x")):
        build_dataset("caltech101", tmp_path / "x", "train")
    root = fake_trees.make_caltech101(tmp_path)
    fake_trees.write_image(root / "zebra" / "image_0001.jpg")
    with pytest.raises(ValueError, match=re.escape(f"caltech101: {root / 'zebra'}: a class needs at least 2 images")):
        build_dataset("caltech101", root, "test")

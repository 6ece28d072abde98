import re

import pytest

import fake_trees
from seed_transfer.datasets import build_dataset


def test_food101_meta_splits(tmp_path):
    root = fake_trees.make_food101(tmp_path)
    train = build_dataset("food101", root, "train")
    assert train.classes == fake_trees.FOOD_CLASSES
    assert train.targets.tolist() == [0, 0, 1, 1, 2, 2]
    assert train.image_paths[0] == root / "images" / "apple_pie" / "1005649.jpg"
    assert build_dataset("food101", tmp_path, "test").targets.tolist() == [0, 1, 2]


def test_food101_missing_files(tmp_path):
    root = fake_trees.make_food101(tmp_path)
    (root / "meta" / "test.txt").unlink()
    path = root / "meta" / "test.txt"
    with pytest.raises(FileNotFoundError, match=re.escape(f"food101: expected the split file {path} (")):
        build_dataset("food101", root, "test")
    (root / "images").rename(root / "img")
    with pytest.raises(FileNotFoundError, match=re.escape(f"food101: expected the image folder {root / 'images'} (")):
        build_dataset("food101", root, "train")


def test_food101_unknown_class_names_the_line(tmp_path):
    root = fake_trees.make_food101(tmp_path)
    split_file = root / "meta" / "train.txt"
    split_file.write_text("apple_pie/1005649\npizza/1\n")
    with pytest.raises(ValueError, match=re.escape(f"food101: {split_file}, line 2: ")):
        build_dataset("food101", root, "train")

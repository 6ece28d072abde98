import re

import pytest

import fake_trees
from seed_transfer.datasets import build_dataset


def test_pets_trainval_and_test(tmp_path):
    root = fake_trees.make_pets(tmp_path)
    train = build_dataset("pets", root, "train")
    assert train.classes == ["Abyssinian", "american_bulldog", "Bengal"]
    assert train.targets.tolist() == [0, 0, 1, 1, 2]
    assert train.image_paths[2] == root / "images" / "american_bulldog_10.jpg"
    assert build_dataset("pets", tmp_path, "trainval").targets.tolist() == [0, 0, 1, 1, 2]
    assert build_dataset("pets", root, "test").targets.tolist() == [0, 1, 2]


def test_pets_missing_files(tmp_path):
    root = fake_trees.make_pets(tmp_path)
    (root / "annotations" / "test.txt").unlink()
    with pytest.raises(FileNotFoundError, match=re.escape(
            f"pets: expected the split file {root / 'annotations' / 'test.txt'} (")):
        build_dataset("pets", root, "train")  # both files give the class list


@pytest.mark.parametrize("bad_line, reason", [
    ("Bengal_11 x 1 2", "expected '<Breed>_<n> <class id from 1>"),
    ("Bengal_11 3 1", "expected '<Breed>_<n> <class id from 1>"),
    ("Birman_11 3 1 2", "class id 3 is 'Birman' here but 'Bengal' before"),
])
def test_pets_malformed_line(tmp_path, bad_line, reason):
    root = fake_trees.make_pets(tmp_path)
    split_file = root / "annotations" / "test.txt"
    split_file.write_text(split_file.read_text() + bad_line + "\n")
    with pytest.raises(ValueError, match=re.escape(f"pets: {split_file}, line 4: {reason}")):
        build_dataset("pets", root, "test")

import pickle
import re

import numpy as np
import pytest

import fake_trees
from seed_transfer.datasets import build_dataset


def test_cifar10_classes_targets_and_pixels(tmp_path):
    root = fake_trees.make_cifar10(tmp_path)
    train, test = build_dataset("cifar10", root, "train"), build_dataset("cifar10", root, "test")
    assert train.classes == ["airplane", "automobile", "bird"]
    assert train.targets.tolist() == [0, 1, 1, 2, 2, 0, 0, 1, 1, 2]  # batches 1..5 in order
    assert test.targets.tolist() == [2, 1, 0]
    # the rows are CHW planes: pixel (c, y, x) of test image i is (i * 7 + c * 3 + 10) % 256
    image, target = test[1]
    assert image.size == (32, 32) and image.mode == "RGB" and target == 1
    assert np.asarray(image)[5, 9].tolist() == [17, 20, 23]


def test_cifar100_uses_fine_labels(tmp_path):
    root = fake_trees.make_cifar100(tmp_path)
    train = build_dataset("cifar100", root, "trainval")
    assert train.classes == ["apple", "aquarium_fish", "baby"]
    assert train.targets.tolist() == [0, 1, 2, 2]
    assert build_dataset("cifar100", root.parent, "test").targets.tolist() == [1, 0]


def test_cifar_missing_batch_names_the_path(tmp_path):
    root = fake_trees.make_cifar10(tmp_path)
    (root / "data_batch_3").unlink()
    build_dataset("cifar10", root, "test")  # the test split does not need it
    with pytest.raises(FileNotFoundError, match=re.escape(f"cifar10: expected the data batch {root / 'data_batch_3'}")):
        build_dataset("cifar10", tmp_path, "train")


def test_cifar_malformed_batch_names_the_file(tmp_path):
    root = fake_trees.make_cifar100(tmp_path)
    with open(root / "test", "wb") as f:
        pickle.dump({b"data": np.zeros((2, 100), np.uint8), b"fine_labels": [0, 1]}, f)
    with pytest.raises(ValueError, match=re.escape(f"cifar100: {root / 'test'}: expected N x 3072 data")):
        build_dataset("cifar100", root, "test")
    with open(root / "test", "wb") as f:
        pickle.dump({b"data": np.zeros((1, 3072), np.uint8), b"fine_labels": [7]}, f)
    with pytest.raises(ValueError, match=r"labels outside \[0, 3\)"):
        build_dataset("cifar100", root, "test")


def test_a_truncated_cifar_pickle_names_the_file(tmp_path):
    root = fake_trees.make_cifar10(tmp_path)
    data = (root / "test_batch").read_bytes()
    (root / "test_batch").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=re.escape(f"cifar10: {root / 'test_batch'}: not a complete CIFAR pickle")):
        build_dataset("cifar10", root, "test")

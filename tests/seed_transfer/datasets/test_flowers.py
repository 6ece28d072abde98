import re

import numpy as np
import pytest
import scipy.io

import fake_trees
from seed_transfer.datasets import build_dataset


def test_flowers_setid_splits(tmp_path):
    root = fake_trees.make_flowers(tmp_path)
    train = build_dataset("flowers", root, "train")
    assert train.classes == ["class_001", "class_002", "class_003"]
    assert train.targets.tolist() == [0, 1, 2]  # images 1, 3, 5 have labels 1, 2, 3
    assert [p.name for p in train.image_paths] == ["image_00001.jpg", "image_00003.jpg", "image_00005.jpg"]
    assert build_dataset("flowers", root, "val").targets.tolist() == [0, 1]
    assert build_dataset("flowers", tmp_path, "test").targets.tolist() == [2, 0, 1, 2]


def test_flowers_missing_files(tmp_path):
    root = fake_trees.make_flowers(tmp_path)
    (root / "setid.mat").unlink()
    with pytest.raises(FileNotFoundError, match=re.escape(f"flowers: expected the split file {root / 'setid.mat'} (")):
        build_dataset("flowers", root, "train")
    (root / "jpg").rename(root / "images")
    (root / "imagelabels.mat").unlink()
    with pytest.raises(FileNotFoundError, match=re.escape(f"expected the label file {root / 'imagelabels.mat'}")):
        build_dataset("flowers", root, "train")


def test_flowers_bad_image_id(tmp_path):
    root = fake_trees.make_flowers(tmp_path)
    scipy.io.savemat(root / "setid.mat", {"trnid": np.array([[1, 10]]), "valid": np.array([[2]]),
                                          "tstid": np.array([[3]])})
    with pytest.raises(ValueError, match=re.escape(f"flowers: {root / 'setid.mat'}: image id 10 outside 1..9")):
        build_dataset("flowers", root, "train")

import shutil

import numpy as np
import pytest
import torch
from tiny_bn import make_imagenet

from seed_transfer.imagenet.data import SeededLabelled, imagenet_split, train_transform, write_digits_folder
from seed_transfer.imagenet.subsets import build_subset

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def test_training_views_depend_only_on_the_sample_seed(tmp_path):
    root = make_imagenet(tmp_path / "imagenet", classes=2, train_per_class=2, size=16)
    views = SeededLabelled(imagenet_split(root, "train"), train_transform(8, MEAN, STD))
    image, target = views[(3, 123)]
    assert image.shape == (3, 8, 8) and target == 1
    torch.manual_seed(999)  # the global RNG does not matter
    assert torch.equal(views[(3, 123)][0], image)
    assert not torch.equal(views[(3, 124)][0], image)


def test_missing_val_folder_names_the_layout(tmp_path):
    root = make_imagenet(tmp_path / "imagenet", classes=2, train_per_class=1)
    shutil.rmtree(root / "val")
    with pytest.raises(FileNotFoundError, match="val/<wnid>/<image>"):
        imagenet_split(root, "val")


def test_digits_demo_folder_holds_real_digits_and_subset_lists(tmp_path):
    root = write_digits_folder(tmp_path / "data")
    train, val = imagenet_split(root, "train"), imagenet_split(root, "val")
    assert (len(train), len(val)) == (1257, 540) and train.classes == [f"digit{d}" for d in range(10)]
    ten, one = build_subset(root / "train", root / "10percent.txt"), build_subset(root / "train", root / "1percent.txt")
    assert len(ten) == 126 and len(one) == 10 and np.bincount(one.targets).tolist() == [1] * 10
    stamp = (root / "train" / "digit0").stat().st_mtime_ns
    assert write_digits_folder(root) == root and (root / "train" / "digit0").stat().st_mtime_ns == stamp  # written once

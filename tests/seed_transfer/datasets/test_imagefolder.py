import re

import pytest

import fake_trees
from seed_transfer.datasets import build_dataset, dataset_info


def test_imagefolder_with_val(tmp_path):
    root = fake_trees.make_imagefolder(tmp_path)
    train = build_dataset("imagefolder", root, "train")
    assert train.classes == ["cat", "dog"] and train.has_official_val
    assert train.targets.tolist() == [0, 0, 1, 1, 1]  # the stray text file is no image
    assert train[4][0].mode == "RGB"  # dog_gray.png is grayscale on disk
    assert build_dataset("imagefolder", root, "val").targets.tolist() == [0]
    assert build_dataset("imagefolder", root, "test").targets.tolist() == [0, 1, 1]
    assert not dataset_info("imagefolder").has_official_val  # the registry cannot know


def test_imagefolder_without_val(tmp_path):
    root = fake_trees.make_imagefolder(tmp_path, with_val=False)
    train = build_dataset("imagefolder", root, "trainval")
    assert not train.has_official_val and len(train) == 5
    with pytest.raises(ValueError, match=re.escape(f"{root / 'val'} does not exist, so there is no official val")):
        build_dataset("imagefolder", root, "val")


def test_imagefolder_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match=re.escape(f"imagefolder: expected the train folder {tmp_path}/train")):
        build_dataset("imagefolder", tmp_path, "train")
    root = fake_trees.make_imagefolder(tmp_path)
    fake_trees.write_image(root / "test" / "bird" / "bird_0.jpg")
    with pytest.raises(ValueError, match=re.escape(f"class folder {root / 'test' / 'bird'} is not a class of")):
        build_dataset("imagefolder", root, "test")
    (root / "test").rename(root / "testing")
    with pytest.raises(FileNotFoundError, match=re.escape(f"imagefolder: expected the test folder {root / 'test'}")):
        build_dataset("imagefolder", root, "test")

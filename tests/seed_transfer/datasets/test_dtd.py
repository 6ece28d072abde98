import re

import pytest

import fake_trees
from seed_transfer.datasets import build_dataset


def test_dtd_split_1(tmp_path):
    root = fake_trees.make_dtd(tmp_path)
    train = build_dataset("dtd", root, "train")
    assert train.classes == fake_trees.DTD_CLASSES  # the hidden .directory file is no class
    assert train.targets.tolist() == [0, 0, 1, 1, 2, 2]
    assert train.image_paths[0] == root / "images" / "banded" / "banded_0000.jpg"
    assert build_dataset("dtd", root, "val").targets.tolist() == [0, 1, 2]
    test = build_dataset("dtd", root, "test")
    assert [p.name for p in test.image_paths] == ["banded_0003.jpg", "blotchy_0003.jpg", "zigzagged_0003.jpg"]


def test_dtd_missing_split_file_and_image_folder(tmp_path):
    root = fake_trees.make_dtd(tmp_path)
    (root / "labels" / "val1.txt").unlink()
    build_dataset("dtd", root, "train")
    expected = f"dtd: expected the split file {root / 'labels' / 'val1.txt'} (official DTD layout: dtd/images/<class>/"
    with pytest.raises(FileNotFoundError, match=re.escape(expected)):
        build_dataset("dtd", root, "trainval")
    (root / "images").rename(root / "imgs")
    with pytest.raises(FileNotFoundError, match=re.escape(f"dtd: expected the image folder {root / 'images'} (")):
        build_dataset("dtd", tmp_path, "train")


def test_dtd_malformed_line(tmp_path):
    root = fake_trees.make_dtd(tmp_path)
    split_file = root / "labels" / "test1.txt"
    split_file.write_text("banded/banded_0003.jpg\n\nstriped/striped_0001.jpg\n")
    with pytest.raises(ValueError, match=re.escape(f"dtd: {split_file}, line 3: ")):
        build_dataset("dtd", root, "test")

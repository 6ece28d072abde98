import re

import numpy as np
import pytest

import fake_trees
from seed_transfer.datasets import build_dataset
from seed_transfer.datasets.voc2007 import CLASSES


def row(positive=(), difficult=()):
    target = np.zeros(20, dtype=np.int8)
    target[[CLASSES.index(c) for c in positive]] = 1
    target[[CLASSES.index(c) for c in difficult]] = -1
    return target.tolist()


def test_voc2007_multilabel_targets(tmp_path):
    root = fake_trees.make_voc2007(tmp_path)
    train = build_dataset("voc2007", root, "train")
    assert train.multilabel and train.classes == fake_trees.VOC_CLASSES
    assert train.targets.tolist() == [row(["chair"], difficult=["diningtable"]), row(["car"])]
    assert train.image_paths[0] == root / "JPEGImages" / "000005.jpg"
    test = build_dataset("voc2007", root, "test")
    assert test.targets.tolist() == [row(["dog", "person"]), row(["train"]), row(["bus"], difficult=["car"])]
    image, target = test[2]
    assert target.dtype == np.int8 and target.tolist() == row(["bus"], difficult=["car"])
    trainval = build_dataset("voc2007", root, "trainval")
    assert trainval.targets.tolist()[2] == row(["horse", "person"])


def test_voc2007_missing_files(tmp_path):
    root = fake_trees.make_voc2007(tmp_path)
    main = root / "ImageSets" / "Main"
    (main / "sofa_val.txt").unlink()
    path = main / "sofa_val.txt"
    with pytest.raises(FileNotFoundError, match=re.escape(f"voc2007: expected the class file {path} (")):
        build_dataset("voc2007", tmp_path, "val")
    (main / "test.txt").unlink()
    with pytest.raises(FileNotFoundError, match=re.escape(f"voc2007: expected the split file {main / 'test.txt'} (")):
        build_dataset("voc2007", root, "test")


@pytest.mark.parametrize("lines, reason", [
    (["000001 -1", "000002  2", "000004 -1"], "line 2: expected '<image id of the split> <1|-1|0>'"),
    (["000001 -1", "000003  1", "000004 -1"], "line 2: expected '<image id of the split> <1|-1|0>'"),
    (["000001 -1", "000004 -1"], "image 000002 of the split is not listed"),
])
def test_voc2007_malformed_class_file(tmp_path, lines, reason):
    root = fake_trees.make_voc2007(tmp_path)
    class_file = fake_trees.write_lines(root / "ImageSets" / "Main" / "cow_test.txt", lines)
    with pytest.raises(ValueError, match=re.escape(f"voc2007: {class_file}")) as error:
        build_dataset("voc2007", root, "test")
    assert reason in str(error.value)

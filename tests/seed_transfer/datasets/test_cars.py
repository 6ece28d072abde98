import re

import numpy as np
import pytest
import scipy.io

import fake_trees
from seed_transfer.datasets import build_dataset


@pytest.mark.parametrize("test_annos_in_devkit", [False, True])
def test_cars_annotations(tmp_path, test_annos_in_devkit):
    root = fake_trees.make_cars(tmp_path, test_annos_in_devkit=test_annos_in_devkit)
    train = build_dataset("cars", root, "train")
    assert train.classes == fake_trees.CARS_CLASSES
    assert train.targets.tolist() == [0, 1, 2, 0, 1]  # class is 1-based in the .mat files
    assert train.image_paths[4] == root / "cars_train" / "00005.jpg"
    test = build_dataset("cars", tmp_path, "test")
    assert test.targets.tolist() == [2, 1, 0] and test.image_paths[0] == root / "cars_test" / "00001.jpg"


def test_cars_single_annotation_file(tmp_path):
    root = fake_trees.make_cars(tmp_path)  # squeeze_me turns a 1 x 1 struct array into a scalar
    scipy.io.savemat(root / "cars_test_annos_withlabels.mat",
                     {"annotations": fake_trees.cars_annotations(["00002.jpg"], [2])})
    test = build_dataset("cars", root, "test")
    assert test.targets.tolist() == [1] and test.image_paths[0].name == "00002.jpg"


def test_cars_missing_files(tmp_path):
    root = fake_trees.make_cars(tmp_path)
    (root / "cars_test_annos_withlabels.mat").unlink()
    with pytest.raises(FileNotFoundError, match=re.escape(
            f"cars: expected the annotation file {root / 'cars_test_annos_withlabels.mat'} (")):
        build_dataset("cars", root, "test")
    (root / "cars_train").rename(root / "train")
    with pytest.raises(FileNotFoundError, match=re.escape(f"expected the image folder {root / 'cars_train'}")):
        build_dataset("cars", root, "train")


def test_cars_class_out_of_range_names_the_entry(tmp_path):
    root = fake_trees.make_cars(tmp_path)
    path = root / "devkit" / "cars_train_annos.mat"
    scipy.io.savemat(path, {"annotations": fake_trees.cars_annotations(["00001.jpg", "00002.jpg"], [1, 197])})
    with pytest.raises(ValueError, match=re.escape(f"cars: {path}: annotation 2 (00002.jpg): class 197 outside 1..3")):
        build_dataset("cars", root, "train")
    scipy.io.savemat(path, {"annots": np.zeros(2)})
    with pytest.raises(ValueError, match="no variable 'annotations'"):
        build_dataset("cars", root, "train")

import pickle
import re

import numpy as np
import pytest

import fake_trees
from seed_core.safe_pickle import RefusedPickle
from pickle_files import Payload, python2_pickle, write_pickle
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


def test_cifar_pickles_as_python2_wrote_them_load(tmp_path):
    """The official files: cPickle protocol 2, str keys and data as BINSTRING, numpy 1.x names."""
    root = fake_trees.make_cifar10(tmp_path)
    for path in root.iterdir():
        path.write_bytes(python2_pickle(pickle.loads(path.read_bytes())))
    test = build_dataset("cifar10", root, "test")
    assert test.classes == ["airplane", "automobile", "bird"] and test.targets.tolist() == [2, 1, 0]
    assert np.asarray(test[1][0])[5, 9].tolist() == [17, 20, 23]


@pytest.mark.parametrize("name, key", [("test_batch", b"data"), ("batches.meta", b"label_names")])
def test_a_cifar_file_with_a_payload_is_refused_and_never_runs(tmp_path, name, key):
    root = fake_trees.make_cifar10(tmp_path)
    marker = tmp_path / "marker"
    contents = pickle.loads((root / name).read_bytes())
    write_pickle(root / name, {**contents, key: Payload(marker)})
    with pytest.raises(RefusedPickle) as refused:
        build_dataset("cifar10", root, "test")
    assert str(refused.value) == (
        f"{root / name}: refused to unpickle 'posix.system': a CIFAR file holds only arrays, numbers and strings"
    )
    assert not marker.exists()


def test_a_cifar_file_that_is_no_dict_names_the_file(tmp_path):
    root = fake_trees.make_cifar10(tmp_path)
    write_pickle(root / "test_batch", [1, 2])
    with pytest.raises(ValueError, match=re.escape(f"cifar10: {root / 'test_batch'}: expected a dict, found a list")):
        build_dataset("cifar10", root, "test")

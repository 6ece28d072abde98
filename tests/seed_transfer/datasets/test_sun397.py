import re

import pytest

import fake_trees
from seed_transfer.datasets import build_dataset


@pytest.mark.parametrize("partitions_inside", [True, False])
def test_sun397_partition_01(tmp_path, partitions_inside):
    root = fake_trees.make_sun397(tmp_path, partitions_inside=partitions_inside)
    for where in (root, tmp_path):
        train = build_dataset("sun397", where, "train")
        assert train.classes == ["abbey", "bakery/shop", "campus"]
        assert train.targets.tolist() == [0, 0, 1, 1, 2, 2]
        assert train.image_paths[2] == root / "b" / "bakery" / "shop" / "sun_10.jpg"
        assert build_dataset("sun397", where, "test").targets.tolist() == [0, 1, 2]


def test_sun397_missing_partition_names_both_places(tmp_path):
    root = fake_trees.make_sun397(tmp_path)
    (root / "Partitions" / "Testing_01.txt").unlink()
    expected = f"sun397: expected the split file {root / 'Partitions' / 'Testing_01.txt'} " \
               f"(or {tmp_path / 'Partitions' / 'Testing_01.txt'})"
    with pytest.raises(FileNotFoundError, match=re.escape(expected)):
        build_dataset("sun397", root, "test")


def test_sun397_unknown_class_names_file_and_line(tmp_path):
    root = fake_trees.make_sun397(tmp_path)
    split_file = root / "Partitions" / "Training_01.txt"
    split_file.write_text(split_file.read_text() + "\n/z/zoo/sun_1.jpg\n")
    with pytest.raises(ValueError, match=re.escape(f"{split_file}, line 8: class '/z/zoo'")):
        build_dataset("sun397", root, "train")

import re

import pytest

import fake_trees
from seed_transfer.datasets import build_dataset


def test_aircraft_variants_with_spaces_and_slashes(tmp_path):
    root = fake_trees.make_aircraft(tmp_path)
    train = build_dataset("aircraft", root, "train")
    assert train.classes == ["Boeing 707-320", "F/A-18", "DHC-1"]
    assert train.targets.tolist() == [0, 0, 1, 1, 2, 2]
    assert train.image_paths[2] == root / "data" / "images" / "1025804.jpg"
    assert build_dataset("aircraft", root, "val").targets.tolist() == [0, 1, 2]
    assert build_dataset("aircraft", tmp_path, "test").image_paths[1].name == "1025807.jpg"


def test_aircraft_missing_files(tmp_path):
    root = fake_trees.make_aircraft(tmp_path)
    (root / "data" / "images_variant_test.txt").unlink()
    path = root / "data" / "images_variant_test.txt"
    with pytest.raises(FileNotFoundError, match=re.escape(f"aircraft: expected the split file {path} (")):
        build_dataset("aircraft", root, "test")
    (root / "data" / "variants.txt").unlink()
    path = root / "data" / "variants.txt"
    with pytest.raises(FileNotFoundError, match=re.escape(f"expected the variant list {path}")):
        build_dataset("aircraft", root, "train")


def test_aircraft_unknown_variant_names_the_line(tmp_path):
    root = fake_trees.make_aircraft(tmp_path)
    split_file = root / "data" / "images_variant_val.txt"
    split_file.write_text("1025796 Boeing 707-320\n1025806 Boeing 727-200\n")
    with pytest.raises(ValueError, match=re.escape(f"aircraft: {split_file}, line 2: ")):
        build_dataset("aircraft", root, "val")

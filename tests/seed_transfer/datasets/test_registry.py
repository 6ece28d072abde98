"""Behaviour every dataset shares: registry, splits, root-or-parent, lazy RGB images, transform, errors."""

import re

import numpy as np
from PIL import Image
import pytest

import fake_stamps
import fake_trees
from seed_transfer.datasets import DATASETS, SPLITS, ClassificationDataset, build_dataset, dataset_info

# name -> (tree maker, {split: size}, number of classes)
CASES = {
    "cifar10": (fake_trees.make_cifar10, {"train": 10, "trainval": 10, "test": 3}, 3),
    "cifar100": (fake_trees.make_cifar100, {"train": 4, "trainval": 4, "test": 2}, 3),
    "sun397": (fake_trees.make_sun397, {"train": 6, "trainval": 6, "test": 3}, 3),
    "dtd": (fake_trees.make_dtd, {"train": 6, "val": 3, "trainval": 9, "test": 3}, 3),
    "aircraft": (fake_trees.make_aircraft, {"train": 6, "val": 3, "trainval": 9, "test": 3}, 3),
    "cars": (fake_trees.make_cars, {"train": 5, "trainval": 5, "test": 3}, 3),
    "pets": (fake_trees.make_pets, {"train": 5, "trainval": 5, "test": 3}, 3),
    "flowers": (fake_trees.make_flowers, {"train": 3, "val": 2, "trainval": 5, "test": 4}, 3),
    "caltech101": (fake_trees.make_caltech101, {"train": 3 + 2 + 30, "trainval": 35, "test": 1 + 1 + 2}, 3),
    "food101": (fake_trees.make_food101, {"train": 6, "trainval": 6, "test": 3}, 3),
    "voc2007": (fake_trees.make_voc2007, {"train": 2, "val": 1, "trainval": 3, "test": 3}, 20),
    "imagefolder": (fake_trees.make_imagefolder, {"train": 5, "val": 1, "trainval": 6, "test": 3}, 2),
    "stamps": (fake_stamps.make_stamps, {"train": 12, "trainval": 12, "test": 12}, 10),
}
METRICS = {"cifar10": "top1", "cifar100": "top1", "sun397": "top1", "dtd": "top1", "aircraft": "mean_per_class",
           "cars": "top1", "pets": "mean_per_class", "flowers": "mean_per_class", "caltech101": "mean_per_class",
           "food101": "top1", "voc2007": "map11", "imagefolder": "top1", "digits": "top1", "stamps": "top1"}


def test_registry_lists_every_dataset_with_its_protocol_metric():
    assert set(DATASETS) == set(CASES) | {"digits"} == set(METRICS)  # digits: packaged example, no fake tree
    assert SPLITS == ("train", "val", "trainval", "test")
    for name, info in DATASETS.items():
        assert info.name == name and info.metric == METRICS[name] and dataset_info(name) is info
    assert {n for n, info in DATASETS.items() if info.has_official_val} == {"dtd", "aircraft", "flowers", "voc2007"}


def test_unknown_name_suggests_a_close_match(tmp_path):
    with pytest.raises(ValueError, match=r"'cifar10'.*valid names: cifar10, cifar100"):
        dataset_info("cifar-10")
    with pytest.raises(ValueError, match="did you mean 'caltech101'"):
        build_dataset("caltech", tmp_path, "train")


@pytest.mark.parametrize("name", sorted(CASES))
def test_splits_sizes_and_items(name, tmp_path):
    make, sizes, num_classes = CASES[name]
    root = make(tmp_path)
    for split, size in sizes.items():
        dataset = build_dataset(name, root, split)
        assert isinstance(dataset, ClassificationDataset)
        assert len(dataset) == size and len(dataset.targets) == size, split
        assert len(dataset.classes) == num_classes
        image, target = dataset[size - 1]
        assert isinstance(image, Image.Image) and image.mode == "RGB"
        if dataset.multilabel:
            assert dataset.targets.dtype == np.int8 and dataset.targets.shape == (size, num_classes)
            assert np.array_equal(target, dataset.targets[size - 1])
        else:
            assert dataset.targets.dtype == np.int64 and dataset.targets.shape == (size,)
            assert type(target) is int and target == dataset.targets[size - 1]
    # every class shows up in train + test
    targets = np.concatenate([build_dataset(name, root, s).targets for s in ("trainval", "test")])
    if targets.ndim == 1:
        assert set(targets.tolist()) == set(range(num_classes))


@pytest.mark.parametrize("name", sorted(CASES))
def test_trainval_is_train_plus_official_val(name, tmp_path):
    root = CASES[name][0](tmp_path)
    train, trainval = build_dataset(name, root, "train"), build_dataset(name, root, "trainval")
    has_val = "val" in CASES[name][1]
    if has_val:
        val = build_dataset(name, root, "val")
        assert val.has_official_val
        assert np.array_equal(trainval.targets, np.concatenate([train.targets, val.targets]))
    else:
        assert not train.has_official_val
        assert np.array_equal(trainval.targets, train.targets)
        with pytest.raises(ValueError, match="no official val split"):
            build_dataset(name, root, "val")


@pytest.mark.parametrize("name", sorted(CASES))
def test_transform_is_applied_to_the_pil_image(name, tmp_path):
    dataset = build_dataset(name, CASES[name][0](tmp_path), "test", transform=lambda image: ("seen", image.size))
    (tag, size), _ = dataset[0]
    assert tag == "seen" and size[0] > 0
    dataset.transform = None  # the feature extractor sets it after building
    assert isinstance(dataset[0][0], Image.Image)


@pytest.mark.parametrize("name", sorted(n for n in CASES if n not in ("imagefolder", "stamps")))
def test_root_may_be_the_dataset_folder_or_its_parent(name, tmp_path):
    folder = CASES[name][0](tmp_path)
    parent = folder.parent.parent if name == "voc2007" else folder.parent  # VOCdevkit/VOC2007
    by_folder, by_parent = build_dataset(name, folder, "test"), build_dataset(name, str(parent), "test")
    assert np.array_equal(by_folder.targets, by_parent.targets)
    if name == "voc2007":  # also VOCdevkit/
        assert np.array_equal(build_dataset(name, folder.parent, "test").targets, by_folder.targets)


@pytest.mark.parametrize("name", sorted(n for n in CASES if n not in ("cifar10", "cifar100")))
def test_missing_images_fail_early_or_lazily_with_the_path(name, tmp_path):
    dataset = build_dataset(name, CASES[name][0](tmp_path), "test")
    first, last = dataset.image_paths[0], dataset.image_paths[-1]
    last.unlink()
    with pytest.raises(FileNotFoundError, match=re.escape(f"{name}: expected the image {last} (")):
        dataset[len(dataset) - 1]
    if name in ("caltech101", "imagefolder", "stamps"):  # the images are the listing: nothing to miss at construction
        return
    first.unlink()
    with pytest.raises(FileNotFoundError, match=re.escape(f"{name}: expected the image {first} (")):
        build_dataset(name, tmp_path / first.relative_to(tmp_path).parts[0], "test")


def test_unknown_split_is_rejected(tmp_path):
    with pytest.raises(ValueError, match="unknown split 'validation'"):
        build_dataset("dtd", fake_trees.make_dtd(tmp_path), "validation")


def test_digits_example_split_is_fixed_and_stratified():
    from seed_transfer.datasets import build_dataset

    train, test = build_dataset("digits", None, "train"), build_dataset("digits", None, "test")
    assert (len(train), len(test)) == (1257, 540)
    assert np.array_equal(build_dataset("digits", None, "test").targets, test.targets)
    assert np.all(np.abs(np.bincount(test.targets) - 54) <= 2)  # ~30% of each class (~180 per class)
    image, _ = train[0]
    assert image.mode == "RGB" and image.size == (8, 8)

"""Caltech-101 (Fei-Fei et al., 2004), 101 classes.

Layout (``root`` is ``101_ObjectCategories/`` or its parent):
    101_ObjectCategories/<class>/image_0001.jpg
``BACKGROUND_Google`` is dropped; ``Faces``, ``Faces_easy`` etc. stay (101 classes).
Split (Kornblith et al., 2019): there is no official split, so per class, 30 images
drawn at random go to train and the rest to test. The draw is a fixed function of the
class's sorted file names: ``np.random.default_rng(0).permutation(n)[:30]``, one fresh
generator per class, so a class's split depends on nothing else. A class with 30
images or fewer keeps one image for test (n - 1 train). No official val split.
"""

from collections.abc import Callable
from pathlib import Path

import numpy as np

from .base import DatasetInfo, ImageFileDataset, Layout, class_folders, find_root, image_files, split_parts

CALTECH101 = DatasetInfo("caltech101", "mean_per_class", has_official_val=False)
LAYOUT = Layout("caltech101", "official Caltech-101 layout: 101_ObjectCategories/<class>/image_<n>.jpg")
TRAIN_PER_CLASS = 30
SEED = 0


def split_class(files: list[Path], train_per_class: int = TRAIN_PER_CLASS, seed: int = SEED) -> dict[str, list[Path]]:
    """One class's sorted files -> {"train": [...], "test": [...]}, both in file-name order."""
    num_train = min(train_per_class, len(files) - 1)
    is_train = np.zeros(len(files), dtype=bool)
    is_train[np.random.default_rng(seed).permutation(len(files))[:num_train]] = True
    return {"train": [f for f, t in zip(files, is_train) if t], "test": [f for f, t in zip(files, is_train) if not t]}


def build_caltech101(root: str | Path, split: str, transform: Callable | None = None) -> ImageFileDataset:
    (part,) = split_parts(CALTECH101, split)  # trainval = train
    root = LAYOUT.folder(find_root(root, "101_ObjectCategories"), "category folder")
    classes = class_folders(root, exclude=("BACKGROUND_Google",))
    if not classes:
        raise LAYOUT.missing("class folders in", root)
    image_paths, targets = [], []
    for target, name in enumerate(classes):
        files = image_files(root / name)
        if len(files) < 2:
            raise LAYOUT.malformed(root / name, f"a class needs at least 2 images (train and test), found {len(files)}")
        selected = split_class(files)[part]
        image_paths += selected
        targets += [target] * len(selected)
    return ImageFileDataset(CALTECH101, split, classes, image_paths, targets, LAYOUT, transform)

"""The Tux Paint stamps' photos of objects (Debian's ``tuxpaint-stamps-default``): 10 classes.

Real photographs of animals, fruit, vegetables, flowers, trees, vehicles and tools on
transparent backgrounds, one class per category folder; ``distill.stamps`` says which
folders and why, and keeps the remaining stamps apart as distillation images. The
classes are the category paths (``animals/birds``, ..., ``vehicles``); images are
read as every dataset reads them (:func:`seed_core.images.read_rgb`: transparency on white).
``root`` None or ``"."`` means ``/usr/share/tuxpaint/stamps``.

Split (not official; fixed): a stratified 50/50 train/test split of the sorted file list
(scikit-learn's ``train_test_split``, seed 0), so that the smallest classes (trees: 7
images) keep at least 3 images on each side; no val split (the caller carves 20% of
train). As Debian ships the package: 111 train and 112 test images.
"""

from collections.abc import Callable
from pathlib import Path

import numpy as np

from distill.stamps import DEFAULT_ROOT, EVAL_CATEGORIES, PACKAGE, labelled_stamps, stamps_root

from .base import DatasetInfo, ImageFileDataset, Layout, split_parts

STAMPS = DatasetInfo("stamps", "top1", has_official_val=False)
TEST_FRACTION, SPLIT_SEED = 0.5, 0


class StampsDataset(ImageFileDataset):
    """Labelled stamps, read as every image file is (:func:`seed_core.images.read_rgb`)."""


def split_indices(targets: np.ndarray, part: str) -> np.ndarray:
    """Sorted indices of the fixed stratified ``part`` ("train" or "test") of the labelled stamps."""
    from sklearn.model_selection import train_test_split

    train_idx, test_idx = train_test_split(
        np.arange(len(targets)), test_size=TEST_FRACTION, stratify=targets, random_state=SPLIT_SEED
    )
    return np.sort(train_idx if part == "train" else test_idx)


def build_stamps(root: str | Path | None, split: str, transform: Callable | None = None) -> StampsDataset:
    (part,) = split_parts(STAMPS, split)
    root = stamps_root(DEFAULT_ROOT if root in (None, "", ".") else root)
    layout = Layout("stamps", f"Tux Paint stamps: <root>/<category>/.../<name>.png, from the {PACKAGE} package")
    labelled = labelled_stamps(root)
    if not labelled:
        raise layout.missing(f"photo categories ({', '.join(EVAL_CATEGORIES)}) under the folder", root)
    paths = np.array([root / path for path, _ in labelled], dtype=object)
    targets = np.array([index for _, index in labelled], dtype=np.int64)
    idx = split_indices(targets, part)
    return StampsDataset(STAMPS, split, EVAL_CATEGORIES, list(paths[idx]), targets[idx], layout, transform)

"""Oxford Flowers-102 (Nilsback & Zisserman, 2008).

Layout (``root`` is the folder holding these, or its parent ``flowers-102/``):
    jpg/image_00001.jpg ... jpg/image_08189.jpg
    imagelabels.mat       labels: 1..102 per image, in image-id order
    setid.mat             trnid, valid, tstid: 1-based image ids
Split: the official train (1,020) / val (1,020) / test (6,149); trainval = train + val.
The official files hold no class names, so classes are ``class_001`` .. ``class_102``.
"""

from collections.abc import Callable
from pathlib import Path

import numpy as np

from .base import DatasetInfo, ImageFileDataset, Layout, find_root, split_parts

FLOWERS = DatasetInfo("flowers", "mean_per_class", has_official_val=True)
LAYOUT = Layout("flowers", "official Flowers-102 layout: jpg/image_<id:05d>.jpg, imagelabels.mat, setid.mat")
SETID_KEYS = {"train": "trnid", "val": "valid", "test": "tstid"}


def build_flowers(root: str | Path, split: str, transform: Callable | None = None) -> ImageFileDataset:
    parts = split_parts(FLOWERS, split)
    root = find_root(root, "flowers-102")
    labels_file, setid_file = root / "imagelabels.mat", root / "setid.mat"
    labels = np.atleast_1d(LAYOUT.loadmat(labels_file, "label file", "labels")["labels"]).astype(np.int64)
    if labels.min() < 1:
        raise LAYOUT.malformed(labels_file, f"labels must be 1-based, found {labels.min()}")
    classes = [f"class_{i:03d}" for i in range(1, labels.max() + 1)]
    setid = LAYOUT.loadmat(setid_file, "split file", *(SETID_KEYS[part] for part in parts))
    images = LAYOUT.folder(root / "jpg", "image folder")
    image_ids = np.concatenate([np.atleast_1d(setid[SETID_KEYS[part]]).astype(np.int64) for part in parts])
    bad = (image_ids < 1) | (image_ids > len(labels))
    if bad.any():
        raise LAYOUT.malformed(setid_file, f"image id {image_ids[bad][0]} outside 1..{len(labels)} "
                                           f"(the images of {labels_file.name})")
    image_paths = [images / f"image_{i:05d}.jpg" for i in image_ids]
    targets = labels[image_ids - 1] - 1  # 1-based labels of 1-based image ids
    return ImageFileDataset(FLOWERS, split, classes, image_paths, targets, LAYOUT, transform)

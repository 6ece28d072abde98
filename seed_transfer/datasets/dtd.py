"""Describable Textures Dataset (Cimpoi et al., 2014), official split 1.

Layout (``root`` is ``dtd/`` or its parent):
    dtd/images/<class>/<class>_<id>.jpg
    dtd/labels/{train1, val1, test1}.txt      lines banded/banded_0002.jpg
Split: partition 1 (40 train / 40 val / 40 test images per class); official val split.
Classes: the sorted folders of ``dtd/images`` (47).
"""

from collections.abc import Callable
from pathlib import Path

from .base import DatasetInfo, ImageFileDataset, Layout, class_folders, find_root, split_parts

DTD = DatasetInfo("dtd", "top1", has_official_val=True)
LAYOUT = Layout("dtd", "official DTD layout: dtd/images/<class>/, dtd/labels/{train,val,test}1.txt")


def build_dtd(root: str | Path, split: str, transform: Callable | None = None) -> ImageFileDataset:
    parts = split_parts(DTD, split)
    root = find_root(root, "dtd")
    images = LAYOUT.folder(root / "images", "image folder")
    classes = class_folders(images)
    index = {name: i for i, name in enumerate(classes)}
    image_paths, targets = [], []
    for part in parts:
        split_file = root / "labels" / f"{part}1.txt"
        for number, line in LAYOUT.lines(split_file, "split file"):
            class_name = line.split("/")[0]
            if "/" not in line or class_name not in index:
                raise LAYOUT.malformed(split_file, f"expected <class>/<image> with a class folder of {images}, "
                                                  f"got {line!r}", number)
            image_paths.append(images / line)
            targets.append(index[class_name])
    return ImageFileDataset(DTD, split, classes, image_paths, targets, LAYOUT, transform)

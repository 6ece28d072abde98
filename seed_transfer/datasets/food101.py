"""Food-101 (Bossard et al., 2014), 101 classes.

Layout (``root`` is ``food-101/`` or its parent):
    food-101/images/<class>/<id>.jpg
    food-101/meta/classes.txt                 one class per line
    food-101/meta/{train, test}.txt           lines apple_pie/1005649 (no extension)
Split: the official 75,750 train / 25,250 test images; no official val split. Classes in
the order of ``classes.txt``.
"""

from collections.abc import Callable
from pathlib import Path

from .base import DatasetInfo, ImageFileDataset, Layout, find_root, split_parts

FOOD101 = DatasetInfo("food101", "top1", has_official_val=False)
LAYOUT = Layout("food101", "official Food-101 layout: food-101/images/<class>/<id>.jpg, "
                           "food-101/meta/{classes,train,test}.txt")


def build_food101(root: str | Path, split: str, transform: Callable | None = None) -> ImageFileDataset:
    (part,) = split_parts(FOOD101, split)  # trainval = train
    root = find_root(root, "food-101")
    classes = [line for _, line in LAYOUT.lines(root / "meta" / "classes.txt", "class list")]
    index = {name: i for i, name in enumerate(classes)}
    images = LAYOUT.folder(root / "images", "image folder")
    split_file = root / "meta" / f"{part}.txt"
    image_paths, targets = [], []
    for number, line in LAYOUT.lines(split_file, "split file"):
        class_name = line.split("/")[0]
        if line.count("/") != 1 or class_name not in index:
            raise LAYOUT.malformed(split_file, f"expected <class>/<id> with a class of classes.txt, got {line!r}",
                                   number)
        image_paths.append(images / f"{line}.jpg")
        targets.append(index[class_name])
    return ImageFileDataset(FOOD101, split, classes, image_paths, targets, LAYOUT, transform)

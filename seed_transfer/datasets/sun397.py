"""SUN397 scene classification (Xiao et al., 2010), first official partition.

Layout (``root`` is ``SUN397/`` or its parent):
    SUN397/<letter>/<class>[/<subclass>]/sun_*.jpg     images, e.g. SUN397/a/abbey/sun_aaalbzqrimafwbiv.jpg
    SUN397/ClassName.txt                               one class per line: /a/abbey, /b/bakery/shop, ...
    Partitions/Training_01.txt, Partitions/Testing_01.txt
                                                       lines /a/abbey/sun_aaalbzqrimafwbiv.jpg
``Partitions/`` may sit inside ``SUN397/`` or beside it, and ``ClassName.txt`` may come
from either folder. Split: partition 01 (50 train / 50 test images per class), as in
Kornblith et al. 2019; no official val split. Class names drop the letter folder:
``/a/abbey`` -> ``abbey``, ``/b/bakery/shop`` -> ``bakery/shop``.
"""

from collections.abc import Callable
from pathlib import Path

from .base import DatasetInfo, ImageFileDataset, Layout, find_root, split_parts

SUN397 = DatasetInfo("sun397", "top1", has_official_val=False)
LAYOUT = Layout("sun397", "official SUN397 layout: SUN397/<letter>/<class>/*.jpg, SUN397/ClassName.txt, "
                          "Partitions/{Training,Testing}_01.txt inside or beside SUN397/")
PARTITION_FILES = {"train": "Training_01.txt", "test": "Testing_01.txt"}


def _first_existing(candidates: list[Path], what: str) -> Path:
    for path in candidates:
        if path.is_file():
            return path
    others = ", ".join(str(p) for p in candidates[1:])
    raise LAYOUT.missing(what, f"{candidates[0]} (or {others})")


def build_sun397(root: str | Path, split: str, transform: Callable | None = None) -> ImageFileDataset:
    parts = split_parts(SUN397, split)
    root = find_root(root, "SUN397")
    partitions = [root / "Partitions", root.parent / "Partitions"]
    class_file = _first_existing([root / "ClassName.txt"] + [p / "ClassName.txt" for p in partitions],
                                 "class list")
    class_keys = []  # "/a/abbey"
    for number, line in LAYOUT.lines(class_file, "class list"):
        if not line.startswith("/") or line.count("/") < 2:
            raise LAYOUT.malformed(class_file, f"expected a class like /a/abbey, got {line!r}", number)
        class_keys.append(line.rstrip("/"))
    index = {key: i for i, key in enumerate(class_keys)}
    classes = [key.split("/", 2)[2] for key in class_keys]

    image_paths, targets = [], []
    for part in parts:
        split_file = _first_existing([p / PARTITION_FILES[part] for p in partitions], "split file")
        for number, line in LAYOUT.lines(split_file, "split file"):
            line = "/" + line.lstrip("/")
            class_key = line.rsplit("/", 1)[0]
            if class_key not in index:
                raise LAYOUT.malformed(split_file, f"class {class_key!r} of {line!r} is not in {class_file}", number)
            image_paths.append(root / line.lstrip("/"))
            targets.append(index[class_key])
    return ImageFileDataset(SUN397, split, classes, image_paths, targets, LAYOUT, transform)

"""FGVC-Aircraft 2013b (Maji et al., 2013), 100 variants.

Layout (``root`` is ``fgvc-aircraft-2013b/`` or its parent):
    fgvc-aircraft-2013b/data/images/<id>.jpg
    fgvc-aircraft-2013b/data/variants.txt                               one variant per line
    fgvc-aircraft-2013b/data/images_variant_{train,val,test}.txt        lines 1025794 Boeing 707-320
Variant names hold spaces, slashes and hyphens (``F/A-18``), so a line is split at its
first space only. Split: the official train / val / test (about 3.3k images each);
trainval = train + val. Classes in the order of ``variants.txt``. Images are used as
shipped (with the copyright banner at the bottom), as in torchvision's reader.
"""

from collections.abc import Callable
from pathlib import Path

from .base import DatasetInfo, ImageFileDataset, Layout, find_root, split_parts

AIRCRAFT = DatasetInfo("aircraft", "mean_per_class", has_official_val=True)
LAYOUT = Layout("aircraft", "official FGVC-Aircraft 2013b layout: fgvc-aircraft-2013b/data/images/<id>.jpg, "
                            "data/variants.txt, data/images_variant_{train,val,test}.txt")


def build_aircraft(root: str | Path, split: str, transform: Callable | None = None) -> ImageFileDataset:
    parts = split_parts(AIRCRAFT, split)
    data = find_root(root, "fgvc-aircraft-2013b") / "data"
    images = LAYOUT.folder(data / "images", "image folder")
    classes = [line for _, line in LAYOUT.lines(data / "variants.txt", "variant list")]
    index = {name: i for i, name in enumerate(classes)}
    image_paths, targets = [], []
    for part in parts:
        split_file = data / f"images_variant_{part}.txt"
        for number, line in LAYOUT.lines(split_file, "split file"):
            image_id, _, variant = line.partition(" ")
            if variant.strip() not in index:
                raise LAYOUT.malformed(split_file, f"expected '<image id> <variant>' with a variant of "
                                                  f"variants.txt, got {line!r}", number)
            image_paths.append(images / f"{image_id}.jpg")
            targets.append(index[variant.strip()])
    return ImageFileDataset(AIRCRAFT, split, classes, image_paths, targets, LAYOUT, transform)

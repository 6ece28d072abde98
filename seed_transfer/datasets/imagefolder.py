"""Any dataset stored as one image folder per split and class.

Layout (``root`` is the folder holding the splits):
    root/train/<class>/<image>      required; defines the classes (sorted folder names)
    root/test/<class>/<image>       required; every class must also be a train class
    root/val/<class>/<image>        optional: when present it is the official val split
                                    (trainval = train + val), else the caller carves 20% of train
Images are the files with an image extension (``base.IMAGE_EXTENSIONS``), sorted by name.
"""

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from seed_core.errors import DataError

from .base import DatasetInfo, ImageFileDataset, Layout, class_folders, image_files, split_parts

IMAGEFOLDER = DatasetInfo("imagefolder", "top1", has_official_val=False)  # per instance: True when root/val exists
LAYOUT = Layout("imagefolder", "image-folder layout: root/train/<class>/*, root/test/<class>/*, "
                               "optional root/val/<class>/*")


def build_imagefolder(root: str | Path, split: str, transform: Callable | None = None) -> ImageFileDataset:
    root = Path(root).expanduser()
    train = LAYOUT.folder(root / "train", "train folder")
    info = replace(IMAGEFOLDER, has_official_val=(root / "val").is_dir())
    if split == "val" and not info.has_official_val:
        raise ValueError(f"imagefolder: {root / 'val'} does not exist, so there is no official val split; "
                         "carve the validation set from split='train' (20%, fixed seed) instead")
    parts = split_parts(info, split)
    classes = class_folders(train)
    if not classes:
        raise LAYOUT.missing("class folders in", train)
    index = {name: i for i, name in enumerate(classes)}
    image_paths, targets = [], []
    for part in parts:
        folder = LAYOUT.folder(root / part, f"{part} folder")
        for name in class_folders(folder):
            if name not in index:
                raise DataError(f"imagefolder: class folder {folder / name} is not a class of {train} "
                                f"(classes come from the train split)")
            files = image_files(folder / name)
            if part == "train" and not files:
                raise DataError(f"imagefolder: train class folder {folder / name} holds no images")
            image_paths += files
            targets += [index[name]] * len(files)
    return ImageFileDataset(info, split, classes, image_paths, targets, LAYOUT, transform)

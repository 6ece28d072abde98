"""Stanford Cars (Krause et al., 2013), 196 classes.

Layout (``root`` is the folder holding these, or its parent ``stanford_cars/``):
    cars_train/<fname>.jpg, cars_test/<fname>.jpg
    devkit/cars_meta.mat                  class_names (196 strings)
    devkit/cars_train_annos.mat           annotations: struct array bbox_x1, bbox_y1, bbox_x2, bbox_y2, class, fname
    cars_test_annos_withlabels.mat        same for the test images (at root or in devkit/)
``class`` is 1-based. Split: the official 8,144 train / 8,041 test images, whole images
(the boxes are not used); no official val split.
"""

from collections.abc import Callable
from pathlib import Path

import numpy as np

from .base import DatasetInfo, ImageFileDataset, Layout, find_root, split_parts

CARS = DatasetInfo("cars", "top1", has_official_val=False)
LAYOUT = Layout("cars", "official Stanford Cars layout: cars_train/, cars_test/, devkit/cars_meta.mat, "
                        "devkit/cars_train_annos.mat, cars_test_annos_withlabels.mat at root or in devkit/")


def _annotations(path: Path, num_classes: int) -> tuple[list[str], np.ndarray]:
    """(file names, 0-based class indices) of an annotation .mat file."""
    annotations = np.atleast_1d(LAYOUT.loadmat(path, "annotation file", "annotations")["annotations"])
    fields = annotations.dtype.names or ()
    if "fname" not in fields or "class" not in fields:
        raise LAYOUT.malformed(path, f"'annotations' needs the fields fname and class, found {fields}")
    file_names = [str(name) for name in annotations["fname"]]
    labels = np.array([int(label) for label in annotations["class"]], dtype=np.int64)
    for entry, label in enumerate(labels, 1):
        if not 1 <= label <= num_classes:
            raise LAYOUT.malformed(path, f"annotation {entry} ({file_names[entry - 1]}): class {label} "
                                         f"outside 1..{num_classes}")
    return file_names, labels - 1


def build_cars(root: str | Path, split: str, transform: Callable | None = None) -> ImageFileDataset:
    (part,) = split_parts(CARS, split)  # trainval = train
    root = find_root(root, "stanford_cars")
    meta = LAYOUT.loadmat(root / "devkit" / "cars_meta.mat", "class list", "class_names")
    classes = [str(name) for name in np.atleast_1d(meta["class_names"])]
    if part == "train":
        annotation_file = root / "devkit" / "cars_train_annos.mat"
    else:
        annotation_file = root / "cars_test_annos_withlabels.mat"
        if not annotation_file.is_file() and (root / "devkit" / annotation_file.name).is_file():
            annotation_file = root / "devkit" / annotation_file.name
    images = LAYOUT.folder(root / f"cars_{part}", "image folder")
    file_names, targets = _annotations(annotation_file, len(classes))
    image_paths = [images / name for name in file_names]
    return ImageFileDataset(CARS, split, classes, image_paths, targets, LAYOUT, transform)

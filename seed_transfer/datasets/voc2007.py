"""PASCAL VOC 2007 multi-label image classification (Everingham et al., 2010), 20 classes.

Layout (``root`` is ``VOC2007/``, ``VOCdevkit/`` or the parent of ``VOCdevkit/``):
    VOCdevkit/VOC2007/JPEGImages/<id>.jpg
    VOCdevkit/VOC2007/ImageSets/Main/{train, val, test}.txt    image ids, one per line
    VOCdevkit/VOC2007/ImageSets/Main/<class>_{train, val, test}.txt
                                       lines '000005 -1': 1 positive, -1 negative, 0 difficult
Split: the official train (2,501) / val (2,510) / test (4,952); trainval = train + val.
Targets are (N, 20) int8: 1 positive, 0 negative, -1 difficult, as the files say; the metric
decides what difficult means (:mod:`seed_transfer.classification.metrics`). The dataset's metric, ``map11``,
is Ericsson et al.'s protocol: difficult images are negatives in the fit and in AP (their
loader keeps ``target == 1``). ``map11_ignore_difficult`` is the VOC devkit's convention:
left out of each class's fit and AP. Keeping the flag in the targets means the cached
features serve both.
"""

from collections.abc import Callable
from pathlib import Path

import numpy as np

from ..voc import CLASSES
from .base import DatasetInfo, ImageFileDataset, Layout, find_root, split_parts

VOC2007 = DatasetInfo("voc2007", "map11", has_official_val=True)
LAYOUT = Layout("voc2007", "official VOC2007 layout: VOCdevkit/VOC2007/JPEGImages/<id>.jpg, "
                           "VOC2007/ImageSets/Main/{<split>,<class>_<split>}.txt")
VOC_TO_TARGET = {1: 1, -1: 0, 0: -1}  # VOC's per-class flags -> positive / negative / difficult


def _class_column(class_file: Path, image_ids: list[str]) -> np.ndarray:
    """One class's targets (N,) int8 for ``image_ids`` from ``<class>_<split>.txt``."""
    row = {image_id: i for i, image_id in enumerate(image_ids)}
    column = np.full(len(image_ids), 2, dtype=np.int8)  # 2 = not listed yet
    for number, line in LAYOUT.lines(class_file, "class file"):
        fields = line.split()
        if len(fields) != 2 or fields[0] not in row or fields[1] not in ("1", "-1", "0"):
            raise LAYOUT.malformed(class_file, f"expected '<image id of the split> <1|-1|0>', got {line!r}", number)
        column[row[fields[0]]] = VOC_TO_TARGET[int(fields[1])]
    if (column == 2).any():
        raise LAYOUT.malformed(class_file, f"image {image_ids[int(np.argmax(column == 2))]} of the split is not listed")
    return column


def build_voc2007(root: str | Path, split: str, transform: Callable | None = None) -> ImageFileDataset:
    parts = split_parts(VOC2007, split)
    root = find_root(root, "VOCdevkit/VOC2007", "VOC2007")
    image_sets = root / "ImageSets" / "Main"
    images = LAYOUT.folder(root / "JPEGImages", "image folder")
    image_paths, targets = [], []
    for part in parts:
        image_ids = [line for _, line in LAYOUT.lines(image_sets / f"{part}.txt", "split file")]
        columns = [_class_column(image_sets / f"{name}_{part}.txt", image_ids) for name in CLASSES]
        image_paths += [images / f"{image_id}.jpg" for image_id in image_ids]
        targets.append(np.stack(columns, axis=1))
    return ImageFileDataset(VOC2007, split, CLASSES, image_paths, np.concatenate(targets), LAYOUT, transform)

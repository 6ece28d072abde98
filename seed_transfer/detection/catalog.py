"""Standard detection dataset names -> where their files are under a data root.

The configs name datasets as Detectron2 does (``voc_2007_trainval``, ``coco_2017_val``);
both engines resolve those names here, against ``--data-root`` (default
``$DETECTRON2_DATASETS`` or ``./datasets``), in the layouts Detectron2 documents:

    <root>/VOC2007/{Annotations,ImageSets,JPEGImages}   (also VOCdevkit/VOC2007)
    <root>/VOC2012/...
    <root>/coco/annotations/instances_{train,val}2017.json, <root>/coco/{train,val}2017/
    <root>/tree_tiles/   (built on first use from the deepforest package data: the offline set)
"""

import os
from dataclasses import dataclass
from pathlib import Path

from seed_core.config import ConfigError

VOC = {
    "voc_2007_trainval": ("VOC2007", "trainval"),
    "voc_2007_train": ("VOC2007", "train"),
    "voc_2007_val": ("VOC2007", "val"),
    "voc_2007_test": ("VOC2007", "test"),
    "voc_2012_trainval": ("VOC2012", "trainval"),
    "voc_2012_train": ("VOC2012", "train"),
}
COCO = {"coco_2017_train": "train2017", "coco_2017_val": "val2017"}
TREES = {"trees_train": "train", "trees_test": "test"}


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    kind: str  # "voc" | "coco" | "trees"
    root: Path  # VOC year folder, COCO image folder, or tree-tile folder
    split: str | None = None  # VOC / trees split
    json_file: Path | None = None  # COCO


def default_data_root() -> Path:
    return Path(os.environ.get("DETECTRON2_DATASETS", "datasets")).expanduser()


def dataset_spec(name: str, data_root: str | Path | None = None) -> DatasetSpec:
    root = Path(data_root).expanduser() if data_root else default_data_root()
    if name in VOC:
        year, split = VOC[name]
        folder = root / year if (root / year).is_dir() else root / "VOCdevkit" / year
        return DatasetSpec(name, "voc", folder, split)
    if name in COCO:
        image_dir = COCO[name]
        return DatasetSpec(
            name,
            "coco",
            root / "coco" / image_dir,
            json_file=root / "coco" / "annotations" / f"instances_{image_dir}.json",
        )
    if name in TREES:
        return DatasetSpec(name, "trees", root / "tree_tiles", TREES[name])
    known = sorted([*VOC, *COCO, *TREES])
    raise ConfigError(
        f"unknown detection dataset {name!r}; known names: {', '.join(known)} "
        f"(files under --data-root, layouts in seed_transfer/detection/catalog.py)"
    )

"""Register the detection datasets of :mod:`seed_transfer.detection.data` with Detectron2.

    register_voc("voc_2007_test", "/data/VOCdevkit/VOC2007", "test")
    register_voc_many("voc_0712_trainval", [("/data/VOCdevkit/VOC2007", "trainval"),
                                            ("/data/VOCdevkit/VOC2012", "trainval")])
    register_coco_json("coco_2017_val", ".../instances_val2017.json", ".../val2017")
    register_tree_tiles("/tmp/tree_tiles")   # -> {"train": "tree_tiles_train", "test": "tree_tiles_test"}

Registering a name again replaces the earlier registration (Detectron2 itself refuses),
so a script or test may run twice in one process, and the built-in names Detectron2
registers on import (``voc_2007_test``, ...) can be pointed at the user's folders.
Metadata: ``thing_classes``, ``evaluator_type`` ("pascal_voc" or "coco", read by
:func:`seed_transfer.detection.d2.evaluation.build_evaluator`), and for VOC ``dirname``,
``split``, ``year`` and ``voc_use_07_metric``.
"""

import re
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from seed_core.errors import DataError

from . import require_detectron2

require_detectron2()

from detectron2.data import DatasetCatalog, MetadataCatalog  # noqa: E402

from ..data import VOC_CLASSES, find_voc_root, load_coco_json, load_voc, load_voc_many  # noqa: E402
from ..tree_tiles import build_tree_tiles  # noqa: E402

EVALUATOR_TYPES = ("pascal_voc", "coco")


def register_dataset(
    name: str, records_fn: Callable[[], list[dict]], classes: Sequence[str] | None, evaluator_type: str, **metadata
) -> str:
    """Register ``records_fn`` (called lazily by ``DatasetCatalog.get(name)``) and its metadata.

    ``classes=None`` leaves ``thing_classes`` to be set by ``records_fn`` (COCO files whose
    categories are only known once read). Any earlier registration of ``name`` is replaced.
    """
    if evaluator_type not in EVALUATOR_TYPES:
        raise ValueError(f"evaluator_type must be one of {EVALUATOR_TYPES}, got {evaluator_type!r}")
    if name in DatasetCatalog.list():
        DatasetCatalog.remove(name)
    if name in MetadataCatalog.list():
        MetadataCatalog.remove(name)
    DatasetCatalog.register(name, records_fn)
    if classes is not None:
        metadata["thing_classes"] = list(classes)
    MetadataCatalog.get(name).set(evaluator_type=evaluator_type, **metadata)
    return name


def _voc_year(root: Path) -> int | None:
    match = re.fullmatch(r"VOC(\d{4})", root.name)
    return int(match.group(1)) if match else None


def register_voc(name: str, root: str | Path, split: str, classes: Sequence[str] = VOC_CLASSES) -> str:
    """A Pascal VOC split; the 11-point metric when the folder is ``VOC2007`` (as Detectron2 does)."""
    root = find_voc_root(root)
    year = _voc_year(root)
    metadata = {"dirname": str(root), "split": split, "voc_use_07_metric": year == 2007}
    if year is not None:
        metadata["year"] = year
    return register_dataset(name, lambda: load_voc(root, split, classes), classes, "pascal_voc", **metadata)


def register_voc_many(name: str, specs: Iterable[tuple[str | Path, str]], classes: Sequence[str] = VOC_CLASSES) -> str:
    """Several VOC splits as one dataset, e.g. VOC07 + VOC12 trainval for training."""
    specs = [(find_voc_root(root), split) for root, split in specs]
    use_07_metric = all(_voc_year(root) == 2007 for root, _ in specs)
    return register_dataset(
        name, lambda: load_voc_many(specs, classes), classes, "pascal_voc", voc_use_07_metric=use_07_metric
    )


def register_coco_json(
    name: str, json_file: str | Path, image_root: str | Path, classes: Sequence[str] | None = None
) -> str:
    """A COCO-format instances JSON. The class names come from its categories when it is
    first loaded (pass ``classes`` to know them before)."""
    json_file, image_root = Path(json_file), Path(image_root)

    def records() -> list[dict]:
        loaded, names = load_coco_json(json_file, image_root)
        metadata = MetadataCatalog.get(name)
        if metadata.get("thing_classes") is None:
            metadata.thing_classes = names
        elif list(metadata.thing_classes) != names:
            raise DataError(
                f"{json_file}: categories {names} differ from the registered classes "
                f"{list(metadata.thing_classes)} of {name!r}"
            )
        return loaded

    # Not "json_file": Detectron2's COCOEvaluator would then score against the JSON's own
    # category ids, which the contiguous ids of the records need not equal. Without it,
    # that evaluator converts the records (pass it an output_dir).
    return register_dataset(name, records, classes, "coco", source_json=str(json_file), image_root=str(image_root))


def register_tree_tiles(out_dir: str | Path, name: str = "tree_tiles", **build_kwargs) -> dict[str, str]:
    """Build (or reuse) the deepforest tree tiles under ``out_dir`` and register
    ``<name>_train`` and ``<name>_test`` (COCO metric); returns ``{split: registered name}``.
    ``build_kwargs`` go to :func:`seed_transfer.detection.tree_tiles.build_tree_tiles`."""
    built = build_tree_tiles(out_dir, **build_kwargs)
    return {
        split: register_coco_json(
            f"{name}_{split}", built[split]["json"], built[split]["image_root"], classes=built["classes"]
        )
        for split in ("train", "test")
    }

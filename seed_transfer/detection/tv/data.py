"""Detection records -> torchvision detection inputs, with Detectron2's training data rules.

- :func:`load_dataset`: a configured dataset name (``voc_2007_test``, ``coco_2017_train``,
  ``trees_train``) -> records (:mod:`seed_transfer.detection.data`), class names and metric.
- :class:`DetectionDataset`: one record -> (0-1 RGB image (3, H, W), target) where the target has
  ``boxes`` (K, 4) XYXY pixels, ``labels`` (K,) 1..C (0 is torchvision's background), and
  ``masks`` (K, H, W) uint8 for Mask R-CNN; crowd and empty boxes are left out, as
  Detectron2's mapper does; ``flip`` mirrors image, boxes and masks.
- :class:`IterationBatches`: the images of every iteration as a function of (seed, iteration):
  a seeded permutation per pass over the data (Detectron2's ``TrainingSampler``), shared out
  over processes, a seeded horizontal flip per image (``INPUT.RANDOM_FLIP``). A resumed run
  sees the batches an uninterrupted run would have seen.
"""

import numpy as np
import torch
from torch.utils.data import Dataset

from seed_core.bad_images import READ_ERRORS
from seed_core.config import ConfigError
from seed_core.errors import DataError
from seed_core.images import read_rgb

from ..catalog import dataset_spec
from ..data import VOC_CLASSES, box_xyxy, find_voc_root, load_coco_json, load_voc
from ..tree_tiles import build_tree_tiles


def load_dataset(name: str, data_root=None) -> dict:
    """``{"records", "classes", "metric": "voc" | "coco", "use_07_metric"}`` of a dataset name."""
    spec = dataset_spec(name, data_root)
    if spec.kind == "voc":
        root = find_voc_root(spec.root)
        return {
            "records": load_voc(root, spec.split),
            "classes": list(VOC_CLASSES),
            "metric": "voc",
            "use_07_metric": root.name == "VOC2007",
        }  # as the Detectron2 engine's registration
    if spec.kind == "coco":
        json_file, image_root = spec.json_file, spec.root
    else:
        built = build_tree_tiles(spec.root)
        json_file, image_root = built[spec.split]["json"], built[spec.split]["image_root"]
    records, classes = load_coco_json(json_file, image_root)
    return {"records": records, "classes": classes, "metric": "coco", "use_07_metric": False}


def load_training_records(names, data_root=None, filter_empty: bool = True) -> tuple[list[dict], list[str]]:
    """The records of all ``DATASETS.TRAIN`` names (classes must agree); ``filter_empty`` leaves out
    images without a usable box (Detectron2's ``DATALOADER.FILTER_EMPTY_ANNOTATIONS``)."""
    records, classes = [], None
    for name in names:
        part = load_dataset(name, data_root)
        if classes is not None and part["classes"] != classes:
            raise ConfigError(f"DATASETS.TRAIN: {name} has classes {part['classes']}, earlier sets {classes}")
        classes = part["classes"]
        records += part["records"]
    return [r for r in records if has_boxes(r)] if filter_empty else records, classes


def _polygons_to_mask(segmentation, height: int, width: int) -> np.ndarray:
    import pycocotools.mask as mask_util

    if isinstance(segmentation, dict):  # RLE
        rle = (
            mask_util.frPyObjects(segmentation, height, width)
            if isinstance(segmentation["counts"], list)
            else segmentation
        )
    else:
        rle = mask_util.merge(mask_util.frPyObjects(segmentation, height, width))
    return mask_util.decode(rle)


class DetectionDataset(Dataset):
    """Records as (image, target) pairs; index with ``i`` or ``(i, flip)``."""

    def __init__(self, records: list[dict], with_masks: bool = False):
        self.records, self.with_masks = records, with_masks

    def __len__(self):
        return len(self.records)

    def __getitem__(self, index):
        index, flip = index if isinstance(index, tuple) else (index, False)
        record = self.records[index]
        try:  # the project's one reader (transparency on white, 16-bit scaled)
            image = read_rgb(record["file_name"])
        except READ_ERRORS as err:  # what the scan of load_voc / load_coco_json cannot see: a truncated file
            raise DataError(
                f"image {record['file_name']} cannot be read ({type(err).__name__}: {err}); a detection set is "
                "read whole, so replace the file (e.g. from the dataset's archive)"
            ) from None
        image = torch.from_numpy(np.asarray(image).copy()).permute(2, 0, 1)
        height, width = image.shape[1:]
        annotations = [a for a in record["annotations"] if not a.get("iscrowd", 0)]
        boxes = torch.tensor([box_xyxy(a) for a in annotations], dtype=torch.float32).reshape(-1, 4)
        boxes[:, 0::2] = boxes[:, 0::2].clamp(0, width)
        boxes[:, 1::2] = boxes[:, 1::2].clamp(0, height)
        keep = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
        target = {
            "boxes": boxes[keep],
            "image_id": record["image_id"],
            "labels": torch.tensor([a["category_id"] + 1 for a in annotations], dtype=torch.int64)[keep],
        }
        if self.with_masks:
            masks = [_polygons_to_mask(a["segmentation"], height, width) for a in annotations]
            stacked = np.stack(masks) if masks else np.zeros((0, height, width), np.uint8)
            target["masks"] = torch.from_numpy(stacked)[keep]
        if flip:
            image = image.flip(-1)
            target["boxes"] = torch.stack(
                [
                    width - target["boxes"][:, 2],
                    target["boxes"][:, 1],
                    width - target["boxes"][:, 0],
                    target["boxes"][:, 3],
                ],
                dim=1,
            )
            if self.with_masks:
                target["masks"] = target["masks"].flip(-1)
        return image.float().div_(255), target


def has_boxes(record: dict) -> bool:
    """Whether the record has a non-crowd box of positive size."""
    boxes = [box_xyxy(a) for a in record["annotations"] if not a.get("iscrowd", 0)]
    return any(x1 > x0 and y1 > y0 for x0, y0, x1, y1 in boxes)


class IterationBatches(torch.utils.data.Sampler):
    """Per iteration ``start..max_iter-1``, this process's ``[(index, flip), ...]`` (``per_process`` images)."""

    def __init__(
        self,
        size: int,
        per_process: int,
        seed: int,
        start: int,
        max_iter: int,
        rank: int = 0,
        world_size: int = 1,
        flip_prob: float = 0.5,
    ):
        if size < 1:
            raise DataError("the training set is empty (no image with a box)")
        self.size, self.per_process, self.seed = size, per_process, seed
        self.start, self.max_iter, self.flip_prob = start, max_iter, flip_prob
        self.rank, self.world_size = rank, world_size
        self._epoch, self._order = None, None

    def __len__(self):
        return max(self.max_iter - self.start, 0)

    def _position(self, position: int) -> int:
        epoch, offset = divmod(position, self.size)
        if epoch != self._epoch:
            generator = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            self._order = torch.randperm(self.size, generator=generator)
            self._epoch = epoch
        return int(self._order[offset])

    def batch(self, iteration: int) -> list[tuple[int, bool]]:
        items = []
        for j in range(self.per_process):
            position = (iteration * self.per_process + j) * self.world_size + self.rank  # global stream, interleaved
            flip = np.random.default_rng([self.seed, position]).random() < self.flip_prob
            items.append((self._position(position), bool(flip)))
        return items

    def __iter__(self):
        for iteration in range(self.start, self.max_iter):
            yield self.batch(iteration)


def collate(batch):
    return tuple(zip(*batch))

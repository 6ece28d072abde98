"""Detectron2 evaluators over the engine-neutral metrics of :mod:`seed_transfer.detection.evaluation`.

Both collect the model's ``Instances`` per image in ``process`` and score them against the
registered records in ``evaluate``, so the Detectron2 engine and the torchvision engine
report the same numbers. Unlike Detectron2's ``PascalVOCDetectionEvaluator``, the VOC one
needs no ``<pose>``/``<truncated>`` tags, no ``year`` and no files besides the records.

Only the images seen by ``process`` are scored (an image with no detection counts, with
none), so evaluating on a subset of a dataset gives that subset's AP. Under DDP the
predictions are gathered on the main process, which alone returns the results.
"""

from seed_core.config import ConfigError

from . import require_detectron2

require_detectron2()

import numpy as np  # noqa: E402
from detectron2.data import DatasetCatalog, MetadataCatalog  # noqa: E402
from detectron2.evaluation import DatasetEvaluator  # noqa: E402
from detectron2.utils import comm  # noqa: E402

from ..evaluation import coco_detection_ap, voc_detection_ap  # noqa: E402


def instances_to_predictions(instances, with_masks: bool = False) -> list[dict]:
    """A model output's ``Instances`` (pred_boxes XYXY in input-image pixels, scores,
    pred_classes, optional pred_masks (N, H, W)) -> the metrics' prediction dicts; masks as
    compressed RLE with ``str`` counts (small and picklable for the DDP gather)."""
    instances = instances.to("cpu")
    boxes = instances.pred_boxes.tensor.numpy().tolist()
    scores = instances.scores.tolist()
    classes = instances.pred_classes.tolist()
    predictions = [
        {"bbox": box, "score": score, "category_id": int(k)} for box, score, k in zip(boxes, scores, classes)
    ]
    if with_masks and instances.has("pred_masks"):
        import pycocotools.mask as mask_util

        masks = instances.pred_masks.numpy().astype(np.uint8)
        for prediction, mask in zip(predictions, masks):
            rle = mask_util.encode(np.asfortranarray(mask))
            rle["counts"] = rle["counts"].decode("ascii")
            prediction["segmentation"] = rle
    return predictions


class _RecordsEvaluator(DatasetEvaluator):
    """Collects predictions per image; subclasses turn them into metrics."""

    with_masks = False

    def __init__(self, dataset_name: str):
        self._dataset_name = dataset_name
        self.reset()

    def reset(self):
        self._predictions = {}  # image_id -> list of prediction dicts

    def process(self, inputs, outputs):
        for inp, output in zip(inputs, outputs):
            self._predictions[inp["image_id"]] = instances_to_predictions(output["instances"], self.with_masks)

    def _gathered(self) -> tuple[list[dict], dict, list[str]] | None:
        """(records of the processed images, predictions, classes) on the main process, else ``None``."""
        parts = comm.gather(self._predictions, dst=0)
        if not comm.is_main_process():
            return None
        predictions = {image_id: preds for part in parts for image_id, preds in part.items()}
        records = [r for r in DatasetCatalog.get(self._dataset_name) if r["image_id"] in predictions]
        if len(records) != len(predictions):
            known = {r["image_id"] for r in records}
            unknown = [image_id for image_id in predictions if image_id not in known]
            raise ValueError(f"{self._dataset_name}: processed images that are not in the dataset, e.g. {unknown[:3]}")
        classes = MetadataCatalog.get(self._dataset_name).thing_classes  # after DatasetCatalog.get (COCO sets it)
        return records, predictions, classes


class VOCDetectionEvaluator(_RecordsEvaluator):
    """Pascal VOC box AP (AP = mean over IoU 0.50:0.05:0.95, AP50, AP75, per-class AP50), as
    Detectron2's ``PascalVOCDetectionEvaluator`` defines it; returns ``{"bbox": {...}}``.

    ``use_07_metric``: the VOC2007 11-point AP; by default the dataset's
    ``voc_use_07_metric`` metadata (True for VOC2007, see ``register_voc``), else True.
    Difficult boxes are known from the records' ``difficult`` flags (``load_voc`` keeps them;
    Detectron2's own VOC loader drops them).
    """

    def __init__(self, dataset_name: str, use_07_metric: bool | None = None):
        if use_07_metric is None:
            use_07_metric = MetadataCatalog.get(dataset_name).get("voc_use_07_metric", True)
        self.use_07_metric = bool(use_07_metric)
        super().__init__(dataset_name)

    def evaluate(self):
        gathered = self._gathered()
        if gathered is None:
            return {}
        return {"bbox": voc_detection_ap(*gathered, use_07_metric=self.use_07_metric)}


class COCODetectionEvaluator(_RecordsEvaluator):
    """COCO AP by pycocotools over the registered records: ``{"bbox": {...}}``, and
    ``{"segm": {...}}`` when ``with_masks`` (Mask R-CNN outputs ``pred_masks``)."""

    def __init__(self, dataset_name: str, with_masks: bool = False):
        self.with_masks = with_masks
        super().__init__(dataset_name)

    def evaluate(self):
        gathered = self._gathered()
        if gathered is None:
            return {}
        results = {"bbox": coco_detection_ap(*gathered, iou_type="bbox")}
        if self.with_masks:
            results["segm"] = coco_detection_ap(*gathered, iou_type="segm")
        return results


def build_evaluator(dataset_name: str, with_masks: bool = False) -> DatasetEvaluator:
    """The evaluator the dataset's ``evaluator_type`` metadata names ("pascal_voc" or "coco").

    Detectron2's own VOC registrations (``voc_2007_test``, ... unless re-registered with
    ``register_voc``) load records without difficult flags; they get Detectron2's
    ``PascalVOCDetectionEvaluator``, which reads the flags from the XML files.
    """
    metadata = MetadataCatalog.get(dataset_name)
    evaluator_type = metadata.get("evaluator_type")
    if evaluator_type == "pascal_voc":
        if with_masks:
            raise ConfigError(f"{dataset_name}: the VOC detection metric has no mask AP")
        if metadata.get("voc_use_07_metric") is None and metadata.get("year") is not None:
            from detectron2.evaluation import PascalVOCDetectionEvaluator

            return PascalVOCDetectionEvaluator(dataset_name)
        return VOCDetectionEvaluator(dataset_name)
    if evaluator_type == "coco":
        return COCODetectionEvaluator(dataset_name, with_masks=with_masks)
    raise ValueError(
        f"{dataset_name}: no evaluator for evaluator_type {evaluator_type!r} "
        "(register it with seed_transfer.detection.d2.datasets)"
    )

"""Detection metrics shared by the engines: Pascal VOC AP and COCO AP over dataset records.

Both take the ground truth as records (:mod:`seed_transfer.detection.data`) and the
predictions as ``{image_id: [{"bbox": [x0, y0, x1, y1], "score": s, "category_id": k}, ...]}``
(pixels, contiguous class ids; for ``iou_type="segm"`` each prediction also carries a
``"segmentation"``: an RLE dict, polygons, or an (H, W) binary mask). Results are in percent,
flat dicts of floats named as Detectron2 names them (``"AP"``, ``"AP50"``, ``"AP-<class>"``).

VOC metric (``voc_detection_ap``), as Detectron2's ``PascalVOCDetectionEvaluator`` computes it
(detectron2/evaluation/pascal_voc_evaluation.py, a port of py-faster-rcnn's ``voc_eval``) and
as MoCo reports on VOC07 test:

* per class and IoU threshold t, detections of all images sorted by decreasing score; each one
  is matched to the ground-truth box of its image and class with the highest IoU; it is a true
  positive if that IoU > t (strictly), the box is not difficult and not matched yet; a false
  positive if the IoU <= t or the box is already matched; neither if the box is difficult;
* recall = TP / (number of non-difficult ground-truth boxes), precision = TP / (TP + FP);
* AP of the class: the VOC2007 11-point interpolated AP, mean over r in {0, 0.1, ..., 1} of
  max(precision at recall >= r) (``use_07_metric=True``, Detectron2's choice for 2007 splits),
  or the area under the interpolated precision envelope (``use_07_metric=False``, VOC2010+);
* AP50 / AP75 = mean over classes at t = 0.50 / 0.75; AP = mean over t in 0.50:0.05:0.95 of the
  per-class mean.

IoU is computed on continuous coordinates. Detectron2 works on VOC's 1-based inclusive integer
corners with the "+1" width convention, and shifts predictions by +1 to match; both give the
same IoU for the records of :func:`~seed_transfer.detection.data.load_voc` (which subtract 1
from xmin/ymin as Detectron2's reader does).
"""

import contextlib
import io
from collections.abc import Mapping, Sequence

import numpy as np

from seed_core.errors import DataError, MissingDependency

from .data import box_xyxy

VOC_IOU_THRESHOLDS = tuple(t / 100.0 for t in range(50, 100, 5))  # 0.50, 0.55, ..., 0.95
COCO_METRICS = ("AP", "AP50", "AP75", "APs", "APm", "APl")  # order of COCOeval.stats[:6]


def _check_predictions(records: Sequence[dict], predictions: Mapping, classes: Sequence[str]):
    known = {r["image_id"] for r in records}
    if len(known) != len(records):
        raise ValueError("records repeat an image_id")
    unknown = [image_id for image_id in predictions if image_id not in known]
    if unknown:
        raise ValueError(f"predictions for image ids that are not in the records, e.g. {unknown[:3]}")
    for image_id, preds in predictions.items():
        for p in preds:
            if not 0 <= int(p["category_id"]) < len(classes):
                raise ValueError(f"image {image_id}: category_id {p['category_id']} outside [0, {len(classes)})")


def voc_ap(recall: np.ndarray, precision: np.ndarray, use_07_metric: bool = True) -> float:
    """AP (fraction) of one precision/recall curve (arrays over the ranked detections).

    11-point (VOC2007): mean over r in {0, 0.1, ..., 1.0} of max(precision[recall >= r]),
    0 where no point reaches r. Otherwise (VOC2010+): area under the monotone envelope of the
    curve, sum over the recall steps of (step width) x (envelope precision).
    """
    recall, precision = np.asarray(recall, dtype=float), np.asarray(precision, dtype=float)
    if use_07_metric:
        levels = np.linspace(0, 1, 11)  # the same floats as the reference's np.arange(0.0, 1.1, 0.1)
        points = [precision[recall >= r].max() if (recall >= r).any() else 0.0 for r in levels]
        return float(np.mean(points))
    recall = np.concatenate(([0.0], recall, [1.0]))
    precision = np.concatenate(([0.0], precision, [0.0]))
    precision = np.maximum.accumulate(precision[::-1])[::-1]  # envelope: max precision to the right
    steps = np.flatnonzero(recall[1:] != recall[:-1])
    return float(np.sum((recall[steps + 1] - recall[steps]) * precision[steps + 1]))


def _iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """IoU (M,) of one box (4,) with boxes (M, 4), all XYXY in continuous coordinates."""
    width = np.clip(np.minimum(boxes[:, 2], box[2]) - np.maximum(boxes[:, 0], box[0]), 0, None)
    height = np.clip(np.minimum(boxes[:, 3], box[3]) - np.maximum(boxes[:, 1], box[1]), 0, None)
    inter = width * height
    union = (box[2] - box[0]) * (box[3] - box[1]) + (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]) - inter
    return inter / np.maximum(union, np.finfo(float).eps)


def _voc_class_aps(gt: dict, detections: list, thresholds: Sequence[float], use_07_metric: bool) -> list[float]:
    """AP (fraction) of one class at each threshold; ``gt``: image -> (boxes (M, 4), difficult (M,)),
    ``detections``: (score, image, box)."""
    num_positive = sum(int((~difficult).sum()) for _, difficult in gt.values())
    order = np.argsort([-score for score, _, _ in detections], kind="stable")
    # The best-overlapping ground truth of each detection does not depend on the threshold.
    best = []  # (image, IoU, index of the ground-truth box) in rank order
    for i in order:
        _, image, box = detections[i]
        boxes, _ = gt.get(image, (np.zeros((0, 4)), None))
        if len(boxes) == 0:
            best.append((image, -np.inf, -1))
            continue
        overlaps = _iou(np.asarray(box, dtype=float), boxes)
        best.append((image, float(overlaps.max()), int(overlaps.argmax())))
    aps = []
    for threshold in thresholds:
        matched = {image: np.zeros(len(boxes), dtype=bool) for image, (boxes, _) in gt.items()}
        tp, fp = np.zeros(len(best)), np.zeros(len(best))
        for rank, (image, overlap, j) in enumerate(best):
            if overlap > threshold:
                if gt[image][1][j]:
                    continue  # a difficult box: neither true nor false positive
                if matched[image][j]:
                    fp[rank] = 1  # its best box is already taken (no fallback to the second best)
                else:
                    tp[rank], matched[image][j] = 1, True
            else:
                fp[rank] = 1
        tp, fp = np.cumsum(tp), np.cumsum(fp)
        recall = tp / num_positive
        precision = tp / np.maximum(tp + fp, np.finfo(float).eps)
        aps.append(voc_ap(recall, precision, use_07_metric))
    return aps


def voc_detection_ap(
    records: Sequence[dict], predictions: Mapping, classes: Sequence[str], use_07_metric: bool = True
) -> dict:
    """Pascal VOC box AP (percent) of ``predictions`` on ``records`` (definition in the module docstring).

    Returns ``{"AP", "AP50", "AP75", "AP50-<class>" for each class}``. Difficult ground truth
    is ignored. A class without non-difficult ground truth has no AP (``nan``) and is left out
    of the means (Detectron2 would count it as 0). Images without an entry in ``predictions``
    have no detections.
    """
    _check_predictions(records, predictions, classes)
    gt = [dict() for _ in classes]  # class -> image -> (boxes (M, 4), difficult (M,))
    for record in records:
        per_class = [([], []) for _ in classes]
        for ann in record["annotations"]:
            boxes, difficult = per_class[ann["category_id"]]
            boxes.append(box_xyxy(ann))
            difficult.append(bool(ann.get("difficult", False)))
        for k, (boxes, difficult) in enumerate(per_class):
            if boxes:
                gt[k][record["image_id"]] = (np.asarray(boxes, dtype=float), np.asarray(difficult, dtype=bool))
    detections = [[] for _ in classes]  # class -> (score, image, box)
    for image_id, preds in predictions.items():
        for p in preds:
            detections[int(p["category_id"])].append((float(p["score"]), image_id, [float(v) for v in p["bbox"]]))

    aps = np.full((len(classes), len(VOC_IOU_THRESHOLDS)), np.nan)  # class x threshold, percent
    for k in range(len(classes)):
        if any((~difficult).any() for _, difficult in gt[k].values()):
            aps[k] = 100 * np.asarray(_voc_class_aps(gt[k], detections[k], VOC_IOU_THRESHOLDS, use_07_metric))
    evaluated = ~np.isnan(aps[:, 0])
    if not evaluated.any():
        raise DataError("the records hold no non-difficult ground-truth box: VOC AP is undefined")
    per_threshold = aps[evaluated].mean(axis=0)  # mean over classes
    results = {
        "AP": float(per_threshold.mean()),
        "AP50": float(per_threshold[VOC_IOU_THRESHOLDS.index(0.5)]),
        "AP75": float(per_threshold[VOC_IOU_THRESHOLDS.index(0.75)]),
    }
    results.update({f"AP50-{name}": float(aps[k, 0]) for k, name in enumerate(classes)})
    return results


# ----------------------------------------------------------------------------- COCO


def _polygon_area(polygons: list) -> float:
    """Summed shoelace area of polygons ``[[x0, y0, x1, y1, ...], ...]`` (Detectron2's GT area)."""
    area = 0.0
    for polygon in polygons:
        xy = np.asarray(polygon, dtype=float).reshape(-1, 2)
        x, y = xy[:, 0], xy[:, 1]
        area += 0.5 * abs(np.dot(x, np.roll(y, 1)) - np.dot(y, np.roll(x, 1)))
    return area


def _pycocotools():
    """pycocotools' ``mask``, ``COCO`` and ``COCOeval``, or an ImportError saying how to install it."""
    try:
        import pycocotools.mask as mask_util
        from pycocotools.coco import COCO
        from pycocotools.cocoeval import COCOeval
    except ImportError as err:
        raise MissingDependency("the COCO metric needs pycocotools: `pip install pycocotools`") from err
    return mask_util, COCO, COCOeval


def _to_rle(segmentation, height: int, width: int) -> dict:
    """One instance's segmentation (polygons, RLE or an (H, W) binary mask) as a compressed RLE."""
    mask_util, _, _ = _pycocotools()

    if isinstance(segmentation, dict):
        if isinstance(segmentation.get("counts"), list):  # uncompressed RLE
            return mask_util.frPyObjects(segmentation, height, width)
        return segmentation
    if isinstance(segmentation, list):
        return mask_util.merge(mask_util.frPyObjects(segmentation, height, width))
    mask = np.asarray(segmentation)
    if mask.shape != (height, width):
        raise ValueError(f"a predicted mask has shape {mask.shape}, the image is {(height, width)}")
    return mask_util.encode(np.asfortranarray(mask.astype(np.uint8)))


def coco_ground_truth(records: Sequence[dict], classes: Sequence[str], with_masks: bool = False) -> dict:
    """The records as a COCO instances dict (image ids 1..N in record order, category ids 1..K).

    Areas (which decide small / medium / large) are the polygon or mask area when there is a
    segmentation, else the box area, as Detectron2's ``convert_to_coco_dict`` computes them.
    Difficult boxes are ordinary ground truth here (as in Detectron2's COCO conversion).
    """
    mask_util, _, _ = _pycocotools()

    images, annotations = [], []
    for i, record in enumerate(records, 1):
        images.append(
            {
                "id": i,
                "width": int(record["width"]),
                "height": int(record["height"]),
                "file_name": str(record.get("file_name", "")),
            }
        )
        for ann in record["annotations"]:
            x0, y0, x1, y1 = box_xyxy(ann)
            coco_ann = {
                "id": len(annotations) + 1,
                "image_id": i,
                "category_id": int(ann["category_id"]) + 1,
                "bbox": [x0, y0, x1 - x0, y1 - y0],
                "iscrowd": int(ann.get("iscrowd", 0)),
            }
            segmentation = ann.get("segmentation")
            if with_masks and segmentation is None:
                raise DataError(f"image {record['image_id']}: an annotation has no segmentation; mask AP needs one")
            if isinstance(segmentation, list):
                coco_ann["area"] = _polygon_area(segmentation)
            elif segmentation is not None:
                rle = _to_rle(segmentation, int(record["height"]), int(record["width"]))
                coco_ann["area"] = float(mask_util.area(rle))
            else:
                coco_ann["area"] = (x1 - x0) * (y1 - y0)
            if segmentation is not None:
                coco_ann["segmentation"] = segmentation
            annotations.append(coco_ann)
    categories = [{"id": k + 1, "name": name} for k, name in enumerate(classes)]
    return {"images": images, "annotations": annotations, "categories": categories}


def coco_detection_ap(
    records: Sequence[dict], predictions: Mapping, classes: Sequence[str], iou_type: str = "bbox"
) -> dict:
    """COCO AP (percent) by pycocotools' COCOeval: ``{"AP", "AP50", "AP75", "APs", "APm", "APl",
    "AP-<class>"}`` with up to 100 detections per image.

    ``iou_type="segm"`` needs a ``"segmentation"`` on every ground-truth annotation and
    prediction; as in Detectron2, predicted masks are scored by their mask area. A metric
    COCOeval cannot compute (no ground truth in that area range or class) is ``nan``. With no
    predictions at all every AP is 0 where ground truth exists (pycocotools cannot load
    an empty result list).
    """
    _, COCO, COCOeval = _pycocotools()
    if iou_type not in ("bbox", "segm"):
        raise ValueError(f"iou_type must be 'bbox' or 'segm', got {iou_type!r}")
    _check_predictions(records, predictions, classes)
    coco_gt = COCO()
    coco_gt.dataset = coco_ground_truth(records, classes, with_masks=iou_type == "segm")
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints progress and tables
        coco_gt.createIndex()

    index = {record["image_id"]: i for i, record in enumerate(records, 1)}
    results = []
    for image_id, preds in predictions.items():
        record = records[index[image_id] - 1]
        for p in preds:
            result = {"image_id": index[image_id], "category_id": int(p["category_id"]) + 1, "score": float(p["score"])}
            if iou_type == "bbox":
                x0, y0, x1, y1 = (float(v) for v in p["bbox"])
                result["bbox"] = [x0, y0, x1 - x0, y1 - y0]
            else:
                if "segmentation" not in p:
                    raise ValueError(f"image {image_id}: a prediction has no 'segmentation'; mask AP needs one")
                result["segmentation"] = _to_rle(p["segmentation"], int(record["height"]), int(record["width"]))
            results.append(result)

    has_gt = np.array(
        [
            any(a["category_id"] == k + 1 and not a["iscrowd"] for a in coco_gt.dataset["annotations"])
            for k in range(len(classes))
        ]
    )
    if not results:
        zeros = {metric: 0.0 if has_gt.any() else float("nan") for metric in COCO_METRICS}
        return {**zeros, **{f"AP-{name}": 0.0 if has_gt[k] else float("nan") for k, name in enumerate(classes)}}

    with contextlib.redirect_stdout(io.StringIO()):
        coco_dt = coco_gt.loadRes(results)
        coco_eval = COCOeval(coco_gt, coco_dt, iou_type)
        coco_eval.evaluate()
        coco_eval.accumulate()
        coco_eval.summarize()
    out = {
        metric: float(coco_eval.stats[i] * 100) if coco_eval.stats[i] >= 0 else float("nan")
        for i, metric in enumerate(COCO_METRICS)
    }
    precision = coco_eval.eval["precision"]  # (IoU thresholds, recall points, classes, area ranges, max dets)
    for k, name in enumerate(classes):
        p = precision[:, :, k, 0, -1]  # all areas, 100 detections
        p = p[p > -1]
        out[f"AP-{name}"] = float(p.mean() * 100) if p.size else float("nan")
    return out

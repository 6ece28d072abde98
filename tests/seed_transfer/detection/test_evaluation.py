import contextlib
import copy
import importlib.util
import io
import math

import numpy as np
import pytest

from seed_transfer.detection.evaluation import coco_detection_ap, voc_ap, voc_detection_ap

needs_pycocotools = pytest.mark.skipif(
    importlib.util.find_spec("pycocotools") is None, reason="the COCO metric needs pycocotools"
)


def ann(box, category_id=0, difficult=False, **extra):
    return {"bbox": list(box), "bbox_mode": 0, "category_id": category_id, "difficult": difficult, **extra}


def record(image_id, annotations, size=(100, 100)):
    return {
        "file_name": f"{image_id}.jpg",
        "image_id": image_id,
        "width": size[0],
        "height": size[1],
        "annotations": annotations,
    }


def ground_truth_as_predictions(records, with_masks=False):
    predictions = {}
    for r in records:
        predictions[r["image_id"]] = [
            {
                "bbox": a["bbox"],
                "score": 1.0,
                "category_id": a["category_id"],
                **({"segmentation": a["segmentation"]} if with_masks else {}),
            }
            for a in r["annotations"]
            if not a.get("iscrowd", 0)
        ]
    return predictions


def square(x0, y0, size):
    return [x0, y0, x0 + size, y0, x0 + size, y0 + size, x0, y0 + size]


RECORDS = [  # two classes, a difficult box, a crowd-free polygon per box
    record(
        "a",
        [
            ann((10, 10, 30, 30), 0, segmentation=[square(10, 10, 20)]),
            ann((50, 50, 90, 80), 1, segmentation=[[50, 50, 90, 50, 90, 80]]),
        ],
    ),
    record(
        "b",
        [
            ann((0, 0, 60, 60), 0, segmentation=[square(0, 0, 60)]),
            ann((70, 5, 80, 15), 1, difficult=True, segmentation=[square(70, 5, 10)]),
        ],
    ),
    record("c", []),
]


@pytest.mark.parametrize("use_07_metric", [True, False])
def test_voc_ground_truth_scores_100(use_07_metric):
    results = voc_detection_ap(RECORDS, ground_truth_as_predictions(RECORDS), ("x", "y"), use_07_metric)
    assert results == pytest.approx({"AP": 100.0, "AP50": 100.0, "AP75": 100.0, "AP50-x": 100.0, "AP50-y": 100.0})


@needs_pycocotools
@pytest.mark.parametrize("iou_type", ["bbox", "segm"])
def test_coco_ground_truth_scores_100(iou_type):
    predictions = ground_truth_as_predictions(RECORDS, with_masks=iou_type == "segm")
    results = coco_detection_ap(RECORDS, predictions, ("x", "y"), iou_type)
    for key in ("AP", "AP50", "AP75", "APs", "APm", "AP-x", "AP-y"):
        assert results[key] == pytest.approx(100.0), key
    assert math.isnan(results["APl"])  # no box reaches 96^2 pixels: COCOeval has nothing to score


@needs_pycocotools
@pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")  # pycocotools' decode, numpy 2
def test_coco_segm_accepts_binary_masks():
    import pycocotools.mask as mask_util

    predictions = ground_truth_as_predictions(RECORDS, with_masks=True)
    for image_id, preds in predictions.items():
        for p in preds:
            rle = mask_util.merge(mask_util.frPyObjects(p["segmentation"], 100, 100))
            p["segmentation"] = mask_util.decode(rle).astype(bool)  # (H, W) mask
    assert coco_detection_ap(RECORDS, predictions, ("x", "y"), "segm")["AP"] == pytest.approx(100.0)


@needs_pycocotools
def test_coco_matches_pycocotools():
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    records = [
        record(1, [ann((10, 10, 50, 50), 0), ann((60, 60, 90, 95), 1)], size=(100, 100)),
        record(2, [ann((5, 5, 25, 30), 0), ann((30, 30, 35, 36), 0), ann((40, 0, 100, 70), 1)], size=(120, 80)),
        record(3, [ann((0, 0, 8, 8), 1)], size=(64, 64)),
    ]
    predictions = {
        1: [
            {"bbox": [12, 8, 52, 48], "score": 0.9, "category_id": 0},
            {"bbox": [60, 60, 85, 90], "score": 0.7, "category_id": 1},
            {"bbox": [0, 0, 20, 20], "score": 0.6, "category_id": 0},
        ],
        2: [
            {"bbox": [6, 5, 25, 28], "score": 0.8, "category_id": 0},
            {"bbox": [30, 31, 35, 36], "score": 0.3, "category_id": 0},
            {"bbox": [45, 5, 100, 60], "score": 0.95, "category_id": 1},
            {"bbox": [40, 0, 100, 70], "score": 0.2, "category_id": 0},
        ],
        3: [{"bbox": [1, 1, 9, 10], "score": 0.5, "category_id": 1}],
    }
    ours = coco_detection_ap(records, predictions, ("x", "y"))

    # pycocotools directly: GT with COCO's XYWH boxes and box areas, category ids 1 and 2.
    gt = {
        "images": [{"id": r["image_id"], "width": r["width"], "height": r["height"]} for r in records],
        "categories": [{"id": 1, "name": "x"}, {"id": 2, "name": "y"}],
        "annotations": [],
    }
    for r in records:
        for a in r["annotations"]:
            x0, y0, x1, y1 = a["bbox"]
            gt["annotations"].append(
                {
                    "id": len(gt["annotations"]) + 1,
                    "image_id": r["image_id"],
                    "category_id": a["category_id"] + 1,
                    "bbox": [x0, y0, x1 - x0, y1 - y0],
                    "area": (x1 - x0) * (y1 - y0),
                    "iscrowd": 0,
                }
            )
    results = [
        {
            "image_id": image_id,
            "category_id": p["category_id"] + 1,
            "score": p["score"],
            "bbox": [p["bbox"][0], p["bbox"][1], p["bbox"][2] - p["bbox"][0], p["bbox"][3] - p["bbox"][1]],
        }
        for image_id, preds in predictions.items()
        for p in preds
    ]
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO()
        coco_gt.dataset = gt
        coco_gt.createIndex()
        coco_eval = COCOeval(coco_gt, coco_gt.loadRes(results), "bbox")
        coco_eval.evaluate()
        coco_eval.accumulate()
        coco_eval.summarize()
    for i, key in enumerate(("AP", "AP50", "AP75", "APs", "APm", "APl")):
        expected = coco_eval.stats[i] * 100 if coco_eval.stats[i] >= 0 else float("nan")
        assert ours[key] == pytest.approx(expected, nan_ok=True), key
    for k, name in enumerate(("x", "y")):
        precision = coco_eval.eval["precision"][:, :, k, 0, -1]
        assert ours[f"AP-{name}"] == pytest.approx(precision[precision > -1].mean() * 100)
    assert 0 < ours["AP"] < 100  # the case is imperfect


@needs_pycocotools
def test_coco_no_predictions_is_zero():
    results = coco_detection_ap(RECORDS, {}, ("x", "y", "z"))
    assert results["AP"] == results["AP50"] == results["AP-x"] == 0.0
    assert math.isnan(results["AP-z"])  # no ground truth


def test_voc_ap_curves():
    recall, precision = np.array([0.2, 0.4, 0.4, 0.8]), np.array([1.0, 1.0, 0.5, 0.8])
    # 11-point: r = 0, .1, .2 -> max precision at recall >= r = 1.0; r = .3, .4 -> 1.0 (recall .4 rows);
    # r = .5 ... .8 (4 levels) -> 0.8; r = .9, 1.0 -> 0.  AP = (5 * 1 + 4 * 0.8) / 11 = 8.2 / 11.
    assert voc_ap(recall, precision, use_07_metric=True) == pytest.approx(8.2 / 11)
    # Area: envelope = 1.0 up to recall .4, then 0.8 up to .8: 0.4 * 1.0 + 0.4 * 0.8 = 0.72.
    assert voc_ap(recall, precision, use_07_metric=False) == pytest.approx(0.72)


def hand_case():
    """Class "a": image A holds g1 (0,0,10,10) and g2 (20,20,30,30); image B holds g3 (0,0,10,10) and a
    difficult g4 (50,50,60,60): 3 positives. Class "b": one box, found exactly. Class "c": no ground truth."""
    records = [
        record("A", [ann((0, 0, 10, 10)), ann((20, 20, 30, 30))]),
        record("B", [ann((0, 0, 10, 10)), ann((50, 50, 60, 60), difficult=True), ann((30, 30, 40, 40), 1)]),
    ]
    predictions = {
        "A": [
            {"bbox": [0, 0, 10, 10], "score": 0.9, "category_id": 0},  # d1: g1, IoU 1 -> TP
            {"bbox": [0, 0, 10, 10], "score": 0.7, "category_id": 0},  # d3: g1 again -> FP
            {"bbox": [100, 100, 110, 110], "score": 0.5, "category_id": 0},  # d5: nothing -> FP
            {"bbox": [5, 5, 15, 15], "score": 0.4, "category_id": 2},
        ],  # class without ground truth
        "B": [
            {"bbox": [50, 50, 60, 60], "score": 0.8, "category_id": 0},  # d2: difficult g4 -> ignored
            {"bbox": [0, 0, 10, 8], "score": 0.6, "category_id": 0},  # d4: g3, IoU 80/100 = 0.8
            {"bbox": [30, 30, 40, 40], "score": 0.3, "category_id": 1},
        ],
    }
    return records, predictions


def test_voc_hand_computed_11_point():
    records, predictions = hand_case()
    results = voc_detection_ap(records, predictions, ("a", "b", "c"), use_07_metric=True)
    # Class "a" at IoU t < 0.8 (d4 counts, 0.8 > t): ranks d1..d5 give
    #   cumulative TP 1, 1, 1, 2, 2 and FP 0, 0, 1, 1, 2 (d2 adds neither);
    #   recall    1/3, 1/3, 1/3, 2/3, 2/3;  precision 1, 1, 1/2, 2/3, 1/2.
    #   11-point: r = 0, .1, .2, .3 -> 1;  r = .4, .5, .6 -> 2/3;  r = .7 ... 1 -> 0.
    #   AP = (4 * 1 + 3 * 2/3) / 11 = 6/11.
    # At t >= 0.8 (0.8 > t fails at t = 0.8: the comparison is strict) d4 is a FP:
    #   recall stays 1/3, precision 1, 1, 1/2, 1/3, 1/4 -> AP = 4 * 1 / 11 = 4/11.
    # Thresholds 0.50 ... 0.75 (six) give 6/11, 0.80 ... 0.95 (four) give 4/11: mean (36 + 16) / 110 = 52/110.
    # Class "b" scores 1 everywhere; class "c" (no ground truth) is nan and left out of the means.
    assert results["AP50-a"] == pytest.approx(100 * 6 / 11)
    assert results["AP50-b"] == pytest.approx(100.0)
    assert math.isnan(results["AP50-c"])
    assert results["AP50"] == pytest.approx(100 * (6 / 11 + 1) / 2)
    assert results["AP75"] == pytest.approx(100 * (6 / 11 + 1) / 2)
    assert results["AP"] == pytest.approx(100 * (52 / 110 + 1) / 2)


def test_voc_hand_computed_area_metric():
    records, predictions = hand_case()
    results = voc_detection_ap(records, predictions, ("a", "b", "c"), use_07_metric=False)
    # Class "a" at t = 0.5, recall/precision as above: envelope 1 up to recall 1/3, then 2/3 up to 2/3:
    # AP = 1/3 * 1 + 1/3 * 2/3 = 5/9.
    assert results["AP50-a"] == pytest.approx(100 * 5 / 9)


def test_voc_difficult_is_ignored():
    records, predictions = hand_case()
    base = voc_detection_ap(records, predictions, ("a", "b", "c"))
    # Without the detection on the difficult box nothing changes (it was neither TP nor FP).
    fewer = copy.deepcopy(predictions)
    fewer["B"] = [p for p in fewer["B"] if p["score"] != 0.8]
    assert voc_detection_ap(records, fewer, ("a", "b", "c")) == pytest.approx(base, nan_ok=True)
    # Marking g2 (never found) difficult removes a positive: recall 1/2 then 1 at t = 0.5:
    # precision 1, 1, 1/2, 2/3, 1/2 -> 11-point: r = 0 ... .5 -> 1 (6), r = .6 ... 1 -> 2/3 (5): (6 + 10/3) / 11.
    easier = copy.deepcopy(records)
    easier[0]["annotations"][1]["difficult"] = True
    assert voc_detection_ap(easier, predictions, ("a", "b", "c"))["AP50-a"] == pytest.approx(100 * (6 + 10 / 3) / 11)


def test_voc_unknown_image_or_class():
    records, predictions = hand_case()
    with pytest.raises(ValueError, match="not in the records"):
        voc_detection_ap(records, {**predictions, "Z": []}, ("a", "b", "c"))
    with pytest.raises(ValueError, match="category_id 3 outside"):
        voc_detection_ap(
            records, predictions | {"A": [{"bbox": [0, 0, 1, 1], "score": 1, "category_id": 3}]}, ("a", "b", "c")
        )

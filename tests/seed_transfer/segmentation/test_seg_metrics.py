"""mIoU / mAcc / aAcc against a hand-computed confusion matrix, and against mmseg's IoUMetric."""

import math

import numpy as np
import pytest
import torch

from seed_transfer.segmentation.metrics import confusion_matrix, scores

# 3 classes; 255 is ignored. 8 labelled pixels.
LABEL = np.array([[0, 0, 1, 1, 255], [2, 2, 2, 0, 255]])
PRED = np.array([[0, 1, 1, 1, 2], [2, 0, 2, 0, 0]])


def test_confusion_matrix_by_hand():
    expected = np.array(
        [
            [2, 1, 0],  # label 0: pred 0, 1, 0 -> (0,0) (0,0) (0,1)
            [0, 2, 0],  # label 1: pred 1, 1
            [1, 0, 2],
        ]
    )  # label 2: pred 2, 0, 2
    np.testing.assert_array_equal(confusion_matrix(PRED, LABEL, 3), expected)


def test_scores_by_hand():
    result = scores(confusion_matrix(PRED, LABEL, 3), ["a", "b", "c"])
    iou = [2 / (3 + 3 - 2), 2 / (2 + 3 - 2), 2 / (3 + 2 - 2)]  # intersect / (label + pred - intersect)
    acc = [2 / 3, 2 / 2, 2 / 3]
    assert result["aAcc"] == pytest.approx(100 * 6 / 8)
    assert result["mIoU"] == pytest.approx(100 * sum(iou) / 3)
    assert result["mAcc"] == pytest.approx(100 * sum(acc) / 3)
    assert result["per_class"]["b"] == pytest.approx({"IoU": 100 * 2 / 3, "Acc": 100.0})


def test_absent_class_is_left_out_of_the_means():
    conf = np.zeros((4, 4), np.int64)
    conf[:3, :3] = confusion_matrix(PRED, LABEL, 3)
    result = scores(conf)
    assert result["per_class"]["3"] == {"IoU": None, "Acc": None}
    assert result["mIoU"] == pytest.approx(scores(conf[:3, :3])["mIoU"])
    assert math.isnan(scores(np.zeros((2, 2)))["mIoU"])


def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match="shape"):
        confusion_matrix(PRED[:, :2], LABEL, 3)
    with pytest.raises(ValueError, match=r"labels outside \[0, 2\)"):
        confusion_matrix(PRED, LABEL, 2)


def test_registered_metric_matches_mmseg_iou_metric():
    from seed_transfer.segmentation.mmseg_setup import import_mmseg

    import_mmseg()
    from mmseg.evaluation import IoUMetric

    from seed_transfer.segmentation.registered import SegConfusionMetric

    rng = np.random.default_rng(0)
    samples = []
    for _ in range(3):
        label = rng.integers(0, 4, (6, 7))
        label[0, :3] = 255
        pred = rng.integers(0, 3, (6, 7))  # class 3 never predicted
        samples.append(
            {
                "pred_sem_seg": {"data": torch.from_numpy(pred)[None]},
                "gt_sem_seg": {"data": torch.from_numpy(label)[None]},
            }
        )
    ours, theirs = SegConfusionMetric(), IoUMetric(iou_metrics=["mIoU"])
    for metric in (ours, theirs):
        metric.dataset_meta = {"classes": ("a", "b", "c", "d")}
        metric.process({}, samples)
    mine, reference = ours.compute_metrics(ours.results), theirs.compute_metrics(theirs.results)
    for key in ("mIoU", "mAcc", "aAcc"):  # mmseg rounds to 2 decimals
        assert mine[key] == pytest.approx(reference[key], abs=0.006)
    assert set(mine) >= {"IoU.a", "Acc.d"}

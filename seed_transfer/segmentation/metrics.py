"""Semantic segmentation scores from a confusion matrix (mIoU, mAcc, aAcc), as MMSegmentation's
``IoUMetric`` defines them, plus the per-class values it only prints.

With C[t, p] the number of pixels of true class t predicted as p (ignored pixels excluded):

    IoU_k = C[k,k] / (sum_p C[k,p] + sum_t C[t,k] - C[k,k])      (NaN when class k is in
    Acc_k = C[k,k] / sum_p C[k,p]                                  neither prediction nor label)
    aAcc  = trace(C) / sum(C);  mIoU, mAcc = means over the classes whose value is not NaN
All values are in percent.
"""

import math

import numpy as np


def confusion_matrix(pred: np.ndarray, label: np.ndarray, num_classes: int, ignore_index: int = 255) -> np.ndarray:
    """num_classes x num_classes int64 counts: rows are labels, columns predictions. ``pred`` and
    ``label`` are integer arrays of one shape; pixels whose label is ``ignore_index`` are skipped."""
    pred, label = np.asarray(pred), np.asarray(label)
    if pred.shape != label.shape:
        raise ValueError(f"prediction shape {pred.shape} differs from label shape {label.shape}")
    keep = label != ignore_index
    label, pred = label[keep].astype(np.int64), pred[keep].astype(np.int64)
    if label.size and (label.min() < 0 or label.max() >= num_classes):
        raise ValueError(
            f"labels outside [0, {num_classes}) besides ignore_index={ignore_index}: "
            f"{sorted(set(np.unique(label)) - set(range(num_classes)))[:10]}"
        )
    if pred.size and (pred.min() < 0 or pred.max() >= num_classes):
        raise ValueError(f"predictions outside [0, {num_classes})")
    return np.bincount(label * num_classes + pred, minlength=num_classes**2).reshape(num_classes, num_classes)


def scores(confusion: np.ndarray, class_names=None) -> dict:
    """``{"aAcc", "mIoU", "mAcc", "per_class": {name: {"IoU", "Acc"}}}`` in percent; per-class
    values are None where undefined (class absent from labels and predictions)."""
    confusion = np.asarray(confusion, dtype=np.float64)
    num_classes = confusion.shape[0]
    names = list(class_names) if class_names is not None else [str(k) for k in range(num_classes)]
    if len(names) != num_classes:
        raise ValueError(f"{len(names)} class names for a {num_classes}-class confusion matrix")
    intersect = np.diag(confusion)
    area_label, area_pred = confusion.sum(1), confusion.sum(0)
    with np.errstate(divide="ignore", invalid="ignore"):
        iou = intersect / (area_label + area_pred - intersect)
        acc = intersect / area_label
    total = confusion.sum()
    out = {
        "aAcc": 100 * float(intersect.sum() / total) if total else math.nan,
        "mIoU": 100 * float(np.nanmean(iou)) if not np.isnan(iou).all() else math.nan,
        "mAcc": 100 * float(np.nanmean(acc)) if not np.isnan(acc).all() else math.nan,
    }
    out["per_class"] = {
        name: {"IoU": None if np.isnan(i) else 100 * float(i), "Acc": None if np.isnan(a) else 100 * float(a)}
        for name, i, a in zip(names, iou, acc)
    }
    return out

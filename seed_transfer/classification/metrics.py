"""Transfer metrics of the linear protocol (Ericsson et al., CVPR 2021, Sec. 3), in percent.

- ``top1``: fraction of correct predictions (CIFAR, Cars, DTD, Food, SUN397).
- ``mean_per_class``: recall of each class, averaged over the classes present in the
  labels (Aircraft, Pets, Flowers, Caltech-101).
- ``map11``: Pascal VOC 2007 11-point interpolated average precision, one binary
  problem per class, averaged over the classes (VOC 2007 classification), with
  Ericsson et al.'s treatment of "difficult" examples: negatives, in the fit and in AP
  (their VOC loader keeps ``target == 1`` as the label).
- ``map11_ignore_difficult``: the same AP with the VOC devkit's convention: difficult
  examples are left out (counted neither as a hit nor as a false alarm), and the linear
  protocol leaves them out of that class's fit too.

Multi-label targets: 1 = present, 0 = absent, -1 = difficult; the metric decides what
difficult means (:func:`difficult_rule`).
"""

from functools import partial
from typing import Callable

import numpy as np


def _labels_pair(pred, y) -> tuple[np.ndarray, np.ndarray]:
    pred, y = np.asarray(pred), np.asarray(y)
    if pred.ndim != 1 or y.ndim != 1:
        raise ValueError(f"predictions and labels must be 1-D, got shapes {pred.shape} and {y.shape}")
    if len(pred) != len(y):
        raise ValueError(f"predictions and labels differ in length: {len(pred)} vs {len(y)}")
    if len(y) == 0:
        raise ValueError("cannot score an empty set of predictions")
    return pred, y


def top1_accuracy(pred, y) -> float:
    """100 * mean(pred == y).  pred, y: (N,) class indices."""
    pred, y = _labels_pair(pred, y)
    return 100.0 * float(np.mean(pred == y))


def mean_per_class_accuracy(pred, y) -> float:
    """100 * mean over classes c in y of  #{pred == y == c} / #{y == c}.

    As in Ericsson et al. (diagonal of the confusion matrix over its row sums), but the
    mean runs over the classes that occur in ``y`` only: a class that is predicted yet
    absent from ``y`` has no recall (their confusion-matrix version gives NaN there).
    pred, y: (N,) class indices.
    """
    pred, y = _labels_pair(pred, y)
    classes, y_idx = np.unique(y, return_inverse=True)
    hits = np.bincount(y_idx, weights=(pred == y), minlength=len(classes))  # (num classes in y,)
    counts = np.bincount(y_idx, minlength=len(classes))
    return 100.0 * float(np.mean(hits / counts))


DIFFICULT_RULES = ("negative", "ignore")


def _check_difficult(difficult: str) -> None:
    if difficult not in DIFFICULT_RULES:
        raise ValueError(f"difficult must be one of {DIFFICULT_RULES}, got {difficult!r}")


def voc07_11point_ap(scores, targets, difficult: str = "negative") -> float:
    """11-point interpolated AP of one class (VOC 2007 devkit, ``VOCevalcls.m``), in percent.

    AP = 1/11 * sum_{t in 0, 0.1, ..., 1} max{precision(r) : recall(r) >= t}  (0 if no r),
    over the precision/recall points obtained by thresholding ``scores`` at each of its
    distinct values. Examples with target -1 (difficult) count as negatives
    (``difficult="negative"``, Ericsson et al.) or are dropped first (``"ignore"``, the
    devkit's convention). Examples sharing a score enter the ranking together, so the result does not depend on the
    input order (the devkit breaks such ties by position). Unlike Ericsson et al.'s
    ``voc_ap`` on top of ``sklearn.metrics.precision_recall_curve``, no extra
    (recall 0, precision 1) point is added, which there lifts the t = 0 term to 1 even
    when the top-scoring example is a negative.

    Args:
        scores: (N,) classifier scores, higher = more confident the class is present.
        targets: (N,) in {1, 0, -1}.
        difficult: "negative" or "ignore": what a -1 target is.
    """
    _check_difficult(difficult)
    scores, targets = np.asarray(scores, dtype=np.float64), np.asarray(targets)
    if scores.ndim != 1 or scores.shape != targets.shape:
        raise ValueError(f"scores and targets must be 1-D of equal length, got {scores.shape} and {targets.shape}")
    if not np.isin(targets, (-1, 0, 1)).all():
        raise ValueError(f"targets must be in {{1, 0, -1}}, got values {np.unique(targets).tolist()}")
    keep = targets != -1 if difficult == "ignore" else np.ones(len(targets), dtype=bool)
    scores, positive = scores[keep], targets[keep] == 1
    num_pos = int(positive.sum())
    if num_pos == 0:
        raise ValueError("AP is undefined: no positive (target 1) example")
    order = np.argsort(-scores, kind="stable")
    scores, positive = scores[order], positive[order]
    tp = np.cumsum(positive)  # (N,) hits among the top i+1
    # Keep only the last index of each run of equal scores: one point per threshold.
    last_of_tie = np.r_[scores[1:] != scores[:-1], True]
    tp, ranked = tp[last_of_tie], np.flatnonzero(last_of_tie) + 1
    precision = tp / ranked
    ap = 0.0
    for i in range(11):
        # recall >= i/10, compared in integers: the float grid of the devkit and of
        # np.linspace has 3 * 0.1 > 0.3 and would miss a recall of exactly 0.3.
        reached = 10 * tp >= i * num_pos
        ap += precision[reached].max() / 11.0 if reached.any() else 0.0
    return 100.0 * ap


def voc07_map(scores, targets, difficult: str = "negative") -> float:
    """Mean over classes of :func:`voc07_11point_ap`, in percent.

    Args:
        scores: (N, C) classifier scores, one column per class.
        targets: (N, C) in {1, 0, -1}.
        difficult: "negative" (Ericsson et al.) or "ignore" (VOC devkit): what a -1 target is.
    """
    scores, targets = np.asarray(scores), np.asarray(targets)
    if scores.ndim != 2 or scores.shape != targets.shape:
        raise ValueError(f"scores and targets must both be (N, C), got {scores.shape} and {targets.shape}")
    aps = []
    for c in range(scores.shape[1]):
        try:
            aps.append(voc07_11point_ap(scores[:, c], targets[:, c], difficult))
        except ValueError as err:
            raise ValueError(f"class {c}: {err}") from None
    return float(np.mean(aps))


# name -> function; the multi-label ones take (scores (N, C), targets (N, C)).
METRICS: dict[str, Callable[..., float]] = {
    "top1": top1_accuracy,
    "mean_per_class": mean_per_class_accuracy,
    "map11": partial(voc07_map, difficult="negative"),
    "map11_ignore_difficult": partial(voc07_map, difficult="ignore"),
}
# multi-label metric -> what a difficult (-1) target is, in the fit and in the score
_DIFFICULT = {"map11": "negative", "map11_ignore_difficult": "ignore"}
MULTI_LABEL_METRICS = frozenset(_DIFFICULT)


def check_metric(name: str) -> str:
    if name not in METRICS:
        raise ValueError(f"unknown metric {name!r}; expected one of {sorted(METRICS)}")
    return name


def difficult_rule(metric_name: str) -> str:
    """ "negative" or "ignore": what a difficult (-1) target is under a multi-label metric."""
    if check_metric(metric_name) not in _DIFFICULT:
        raise ValueError(f"{metric_name!r} is not a multi-label metric; those are {sorted(_DIFFICULT)}")
    return _DIFFICULT[metric_name]


def score(metric_name: str, prediction, target) -> float:
    """Dispatch by name: ``top1`` / ``mean_per_class`` take (pred (N,), labels (N,)),
    ``map11``/``map11_ignore_difficult`` take (scores (N, C), targets (N, C) in {1, 0, -1}).
    Returns percent."""
    return METRICS[check_metric(metric_name)](prediction, target)

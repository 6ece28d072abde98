import numpy as np
import pytest

from seed_transfer.classification.metrics import (
    difficult_rule,
    mean_per_class_accuracy,
    score,
    top1_accuracy,
    voc07_11point_ap,
    voc07_map,
)


def test_top1_accuracy():
    assert top1_accuracy([0, 1, 2, 2], [0, 1, 1, 2]) == pytest.approx(75.0)  # 3 of 4 right


def test_mean_per_class_accuracy_by_hand():
    y = [0, 0, 0, 1, 1, 2]
    pred = [0, 0, 1, 1, 0, 2]
    # class 0: 2/3, class 1: 1/2, class 2: 1/1 -> (2/3 + 1/2 + 1) / 3 = 13/18; top-1 would be 4/6
    assert mean_per_class_accuracy(pred, y) == pytest.approx(100 * 13 / 18)
    assert top1_accuracy(pred, y) == pytest.approx(100 * 4 / 6)


def test_mean_per_class_ignores_classes_only_predicted():
    # class 3 never occurs in y: classes 0 (1/2) and 1 (2/2) -> 3/4
    assert mean_per_class_accuracy([0, 3, 1, 1], [0, 0, 1, 1]) == pytest.approx(75.0)


def test_voc07_ap_by_hand():
    # Ranked: P N P N P, 3 positives. (recall, precision) after each rank:
    # (1/3, 1), (1/3, 1/2), (2/3, 2/3), (2/3, 1/2), (1, 3/5)
    # t = 0, .1, .2, .3 -> max precision at recall >= t = 1          (4 points)
    # t = .4, .5, .6    -> 2/3                                       (3 points)
    # t = .7, .8, .9, 1 -> 3/5                                       (4 points)
    # AP = (4 * 1 + 3 * 2/3 + 4 * 3/5) / 11 = 8.4 / 11
    scores = [0.9, 0.8, 0.7, 0.6, 0.5]
    targets = [1, 0, 1, 0, 1]
    assert voc07_11point_ap(scores, targets) == pytest.approx(100 * 8.4 / 11)


def test_voc07_ap_difficult_is_negative_by_default_or_ignored():
    scores = [0.95, 0.9, 0.8, 0.7, 0.6, 0.5, 0.1]
    targets = [-1, 1, 0, 1, 0, 1, -1]  # the case above plus two difficult examples
    # Ignored (VOC devkit): the hand case above.
    assert voc07_11point_ap(scores, targets, difficult="ignore") == pytest.approx(100 * 8.4 / 11)
    # Negatives (Ericsson et al., the default): N P N P N P N gives precisions 1/2, 2/4, 3/6
    # at recalls 1/3, 2/3, 1 -> AP = 1/2; the last negative ranks below every positive.
    assert voc07_11point_ap(scores, targets) == pytest.approx(50.0)
    assert voc07_11point_ap(scores, [0 if t == -1 else t for t in targets]) == pytest.approx(50.0)


def test_map11_names_the_difficult_rule():
    scores = np.array([[0.95, 0.9, 0.8, 0.7, 0.6, 0.5], [6, 5, 4, 3, 2, 1]], dtype=float).T
    targets = np.array([[-1, 1, 0, 1, 0, 1], [1, 1, 0, 0, 0, 0]]).T
    assert difficult_rule("map11") == "negative" and difficult_rule("map11_ignore_difficult") == "ignore"
    assert score("map11", scores, targets) == pytest.approx(100 * (0.5 + 1) / 2)
    assert score("map11_ignore_difficult", scores, targets) == pytest.approx(100 * (8.4 / 11 + 1) / 2)
    with pytest.raises(ValueError, match="'top1' is not a multi-label metric"):
        difficult_rule("top1")


def test_voc07_ap_recall_exactly_on_the_grid():
    # 10 positives: P P P N, then 7 P. Points: recall .1/.2/.3 at precision 1, then
    # (.3, 3/4), then recall .4 .. 1 at precision 4/5 .. 10/11 (increasing).
    # t = 0 .. .3 -> 1 (4 points, recall 3/10 >= 0.3 exactly); t = .4 .. 1 -> 10/11 (7 points)
    # AP = (4 + 7 * 10/11) / 11 = 114/121. A float grid (3 * 0.1 > 0.3) would give 113/121.
    scores = -np.arange(11.0)
    targets = [1, 1, 1, 0] + [1] * 7
    assert voc07_11point_ap(scores, targets) == pytest.approx(100 * 114 / 121)


def test_voc07_ap_ties_do_not_depend_on_order():
    # one threshold: 1 hit out of 2 ranked, recall 1 -> precision 1/2 at every t
    assert voc07_11point_ap([0.5, 0.5], [1, 0]) == pytest.approx(50.0)
    assert voc07_11point_ap([0.5, 0.5], [0, 1]) == pytest.approx(50.0)


def test_voc07_map_averages_classes():
    scores = np.array([[0.9, 0.8, 0.7, 0.6, 0.5], [5, 4, 3, 2, 1]], dtype=float).T  # N x C = 5 x 2
    targets = np.array([[1, 0, 1, 0, 1], [1, 1, -1, 0, 0]]).T
    # class 0: 8.4/11 (hand case above); class 1: both positives ranked first -> 1
    expected = 100 * (8.4 / 11 + 1) / 2
    assert voc07_map(scores, targets) == pytest.approx(expected)
    assert voc07_map(scores, targets, difficult="ignore") == pytest.approx(expected)
    assert score("map11", scores, targets) == pytest.approx(expected)


def test_score_dispatch():
    assert score("top1", [1, 1], [1, 0]) == pytest.approx(50.0)
    assert score("mean_per_class", [0, 0, 1], [0, 1, 1]) == pytest.approx(75.0)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: score("top5", [0], [0]), "unknown metric"),
        (lambda: top1_accuracy([0, 1], [0]), "differ in length"),
        (lambda: mean_per_class_accuracy([], []), "empty"),
        (lambda: voc07_11point_ap([0.1, 0.2], [0, -1]), "no positive"),
        (lambda: voc07_11point_ap([0.1, 0.2], [1, 0], difficult="skip"), "difficult must be one of"),
        (lambda: voc07_11point_ap([0.1, 0.2], [0, 2]), "targets must be in"),
        (lambda: voc07_map(np.zeros((3, 2)), np.zeros((3, 3))), r"\(N, C\)"),
        (lambda: voc07_map(np.zeros((2, 2)), np.array([[1, 0], [0, 0]])), "class 1"),
    ],
)
def test_bad_inputs_raise(call, message):
    with pytest.raises(ValueError, match=message):
        call()

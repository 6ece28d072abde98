"""The two pieces this package adds to MMSegmentation's registries (imported by
:func:`seed_transfer.segmentation.mmseg_setup.import_mmseg`, after mmseg itself):

- ``SegConfusionMetric``: accumulates the confusion matrix over the (distributed) val set and
  reports mIoU / mAcc / aAcc and per-class IoU / Acc (:mod:`.metrics`);
- ``CityscapesLabelIdsToTrainIds``: maps official ``*_gtFine_labelIds.png`` values to the 19 train ids.
"""

import numpy as np
from mmengine.evaluator import BaseMetric
from mmseg.registry import METRICS, TRANSFORMS

from .datasets import CITYSCAPES_ID_TO_TRAINID
from .metrics import confusion_matrix, scores


@METRICS.register_module(force=True)
class SegConfusionMetric(BaseMetric):
    """Scores of :func:`seed_transfer.segmentation.metrics.scores`; flat keys ``mIoU``, ``mAcc``,
    ``aAcc``, ``IoU.<class>``, ``Acc.<class>`` (mmengine logs them; NaN for undefined classes)."""

    default_prefix = None

    def __init__(self, ignore_index: int = 255, **kwargs):
        super().__init__(**kwargs)
        self.ignore_index = ignore_index

    def process(self, data_batch, data_samples) -> None:
        num_classes = len(self.dataset_meta["classes"])
        for sample in data_samples:
            pred = sample["pred_sem_seg"]["data"].squeeze().cpu().numpy()
            label = sample["gt_sem_seg"]["data"].squeeze().cpu().numpy()
            self.results.append(confusion_matrix(pred, label, num_classes, self.ignore_index))

    def compute_metrics(self, results: list) -> dict:
        result = scores(np.sum(results, axis=0), self.dataset_meta["classes"])
        flat = {k: result[k] for k in ("mIoU", "mAcc", "aAcc")}
        for name, values in result["per_class"].items():
            for key, value in values.items():
                flat[f"{key}.{name}"] = float("nan") if value is None else value
        return flat


@TRANSFORMS.register_module(force=True)
class CityscapesLabelIdsToTrainIds:
    """``results["gt_seg_map"]``: Cityscapes label ids -> train ids 0..18, everything else 255."""

    def __init__(self):
        self.table = np.full(256, 255, np.uint8)
        for label_id, train_id in CITYSCAPES_ID_TO_TRAINID.items():
            self.table[label_id] = train_id

    def __call__(self, results: dict) -> dict:
        results["gt_seg_map"] = self.table[results["gt_seg_map"]]
        return results

    def __repr__(self) -> str:
        return type(self).__name__ + "()"

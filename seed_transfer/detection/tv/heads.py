"""torchvision's RPN and RoI heads with Detectron2's losses, and the C4 res5 box head.

Where torchvision and Detectron2 differ, these follow Detectron2:

- RPN loss (``StandardRPNOutputs``): smooth-L1 with ``RPN.SMOOTH_L1_BETA`` (Detectron2 0.0,
  i.e. L1; torchvision hard-codes 1/9), both terms summed and divided by
  ``BATCH_SIZE_PER_IMAGE x images`` (torchvision: by the number sampled), times the loss weights;
- box loss (``FastRCNNOutputLayers``): smooth-L1 with ``ROI_BOX_HEAD.SMOOTH_L1_BETA`` (0.0) over
  the sampled regions, times ``BBOX_REG_LOSS_WEIGHT``;
- C4 (``Res5ROIHeads``): res5 is the box head (stride-2 first block, then the mean over the
  7x7 map); in training the mask head reads the res5 features of the foreground regions
  instead of pooling again, at inference res5 runs on the detected boxes.
"""

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models.detection.roi_heads import RoIHeads, maskrcnn_inference, maskrcnn_loss
from torchvision.models.detection.rpn import RegionProposalNetwork


class D2RPN(RegionProposalNetwork):
    """torchvision's RPN with Detectron2's loss (see the module docstring)."""

    def __init__(
        self, *args, smooth_l1_beta: float = 0.0, loss_weight: float = 1.0, box_loss_weight: float = 1.0, **kwargs
    ):
        super().__init__(*args, **kwargs)
        self.smooth_l1_beta, self.loss_weight, self.box_loss_weight = smooth_l1_beta, loss_weight, box_loss_weight

    def compute_loss(self, objectness, pred_bbox_deltas, labels, regression_targets):
        sampled_pos, sampled_neg = self.fg_bg_sampler(labels)
        pos = torch.where(torch.cat(sampled_pos))[0]
        sampled = torch.cat([pos, torch.where(torch.cat(sampled_neg))[0]])
        normalizer = self.fg_bg_sampler.batch_size_per_image * len(labels)
        labels, regression_targets = torch.cat(labels), torch.cat(regression_targets)
        box_loss = (
            F.smooth_l1_loss(pred_bbox_deltas[pos], regression_targets[pos], beta=self.smooth_l1_beta, reduction="sum")
            / normalizer
        )
        objectness_loss = (
            F.binary_cross_entropy_with_logits(objectness.flatten()[sampled], labels[sampled], reduction="sum")
            / normalizer
        )
        return objectness_loss * self.loss_weight, box_loss * self.loss_weight * self.box_loss_weight


class Res5Head(nn.Module):
    """C4 box head: ResNet's res5 (torchvision ``layer4``, stride 2 in its first block) on the
    14x14 RoI features, then optionally one more norm (MoCo's ``Res5ROIHeadsExtraNorm``).
    (R, C4, 14, 14) -> (R, C5, 7, 7); the box predictor averages it."""

    def __init__(self, layer4: nn.Module, extra_norm: nn.Module | None = None):
        super().__init__()
        self.res5 = layer4
        self.norm = extra_norm if extra_norm is not None else nn.Identity()

    def forward(self, x):
        return self.norm(self.res5(x))


class D2RoIHeads(RoIHeads):
    """torchvision's ``RoIHeads`` (sampling, target encoding, post-processing) with Detectron2's
    box loss and the C4 mask path. Boxes only, or boxes and masks (``mask_predictor`` set)."""

    def __init__(self, *args, smooth_l1_beta: float = 0.0, box_loss_weight: float = 1.0, **kwargs):
        super().__init__(*args, **kwargs)
        self.smooth_l1_beta, self.box_loss_weight = smooth_l1_beta, box_loss_weight

    @property
    def mask_on(self) -> bool:
        return self.mask_predictor is not None

    def box_loss(self, class_logits, box_regression, labels, regression_targets) -> dict:
        labels, regression_targets = torch.cat(labels), torch.cat(regression_targets)
        pos = torch.where(labels > 0)[0]
        box_regression = box_regression.reshape(labels.numel(), -1, 4)[pos, labels[pos]]
        box_loss = F.smooth_l1_loss(box_regression, regression_targets[pos], beta=self.smooth_l1_beta, reduction="sum")
        return {
            "loss_classifier": F.cross_entropy(class_logits, labels),
            "loss_box_reg": box_loss / max(labels.numel(), 1) * self.box_loss_weight,
        }

    def _mask_logits(self, features, boxes, image_shapes):
        """Mask logits of ``boxes``: FPN pools and runs its mask head; C4 re-runs res5 (the box head)."""
        if self.mask_head is not None:
            return self.mask_predictor(self.mask_head(self.mask_roi_pool(features, boxes, image_shapes)))
        return self.mask_predictor(self.box_head(self.box_roi_pool(features, boxes, image_shapes)))

    def forward(self, features, proposals, image_shapes, targets=None):
        if self.training:
            proposals, matched_idxs, labels, regression_targets = self.select_training_samples(proposals, targets)
        region_features = self.box_head(self.box_roi_pool(features, proposals, image_shapes))
        pooled = region_features.mean(dim=(2, 3)) if region_features.dim() == 4 else region_features
        class_logits, box_regression = self.box_predictor(pooled)
        if not self.training:
            boxes, scores, classes = self.postprocess_detections(class_logits, box_regression, proposals, image_shapes)
            results = [{"boxes": b, "labels": c, "scores": s} for b, s, c in zip(boxes, scores, classes)]
            if self.mask_on:
                mask_logits = self._mask_logits(features, boxes, image_shapes)
                for result, probs in zip(results, maskrcnn_inference(mask_logits, classes)):
                    result["masks"] = probs
            return results, {}
        losses = self.box_loss(class_logits, box_regression, labels, regression_targets)
        if self.mask_on:
            positive = [torch.where(image_labels > 0)[0] for image_labels in labels]
            mask_boxes = [p[i] for p, i in zip(proposals, positive)]
            if self.mask_head is None:  # C4: the foreground regions' res5 features, as Detectron2
                mask_logits = self.mask_predictor(region_features[torch.where(torch.cat(labels) > 0)[0]])
            else:
                mask_logits = self._mask_logits(features, mask_boxes, image_shapes)
            losses["loss_mask"] = maskrcnn_loss(
                mask_logits,
                mask_boxes,
                [t["masks"] for t in targets],
                [t["labels"] for t in targets],
                [m[i] for m, i in zip(matched_idxs, positive)],
            )
        return [], losses

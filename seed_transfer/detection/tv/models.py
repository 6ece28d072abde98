"""Faster / Mask R-CNN from torchvision's detection pieces, laid out as Detectron2 builds them.

    model = build_detector(cfg, backbone)   # backbone: seed_transfer.backbones.load_backbone(...)[0]

Layouts (``MODEL.BACKBONE.NAME``):

- ``build_resnet_backbone`` (C4): stem..res4 (torchvision ``conv1``..``layer3``, stride 16) feeds the
  RPN and a 14x14 RoIAlign; res5 (``layer4``) is the box head (:class:`~.heads.Res5Head`), its
  7x7 output averaged for the box predictor; Mask R-CNN's mask head (deconv + 1x1) reads res5's
  output. torchvision ResNets only (18/34/50/101/152, wide, ResNeXt).
- ``build_resnet_fpn_backbone`` (FPN): the backbone's stride-4/8/16/32 maps (res2..res5) -> FPN
  p2..p5 + p6 (max-pool), 4conv1fc box head, 4conv mask head. Any ResNet, torchvision
  MobileNetV3 / EfficientNet (their ``features`` stages), or timm CNN (``feature_info``).

Backbone parameter names stay those of the source network under ``backbone.body.`` (C4 res5
under ``roi_heads.box_head.res5.``), so loaded weights can be checked key by key. Every value
Detectron2 and torchvision choose differently is set from the config (Detectron2's values);
see the comments at each.
"""

from collections import OrderedDict

import torch
import torchvision
from torch import nn
from torchvision.models._utils import IntermediateLayerGetter
from torchvision.models.detection.faster_rcnn import FastRCNNConvFCHead, FastRCNNPredictor
from torchvision.models.detection.generalized_rcnn import GeneralizedRCNN
from torchvision.models.detection.mask_rcnn import MaskRCNNHeads, MaskRCNNPredictor
from torchvision.models.detection.rpn import RPNHead
from torchvision.ops.feature_pyramid_network import FeaturePyramidNetwork, LastLevelMaxPool

from seed_core.config import ConfigError

from .heads import D2RPN, D2RoIHeads, Res5Head
from .layers import D2AnchorGenerator, RoIPooler, c2_msra_fill, c2_xavier_fill, convert_norm, norm_layer
from .transform import D2Transform

LAYOUTS = {"build_resnet_backbone": "C4", "build_resnet_fpn_backbone": "FPN"}
FPN_STRIDES = (4, 8, 16, 32)  # res2..res5
C4_HEADS = ("Res5ROIHeads", "Res5ROIHeadsAnyDepth", "Res5ROIHeadsExtraNorm")


def layout_of(cfg) -> str:
    name = cfg.MODEL.BACKBONE.NAME
    if name not in LAYOUTS:
        raise ConfigError(f"MODEL.BACKBONE.NAME {name!r}: the torchvision engine builds {sorted(LAYOUTS)}")
    return LAYOUTS[name]


# ----------------------------------------------------------------------------- backbones


class C4Body(nn.Module):
    """A torchvision ResNet's stem and res2..res4 (``conv1``, ``bn1``, ``layer1..3``): images ->
    ``{"res4": (N, C4, H/16, W/16)}``. Module names are the ResNet's own."""

    def __init__(self, resnet: torchvision.models.ResNet):
        super().__init__()
        for name in ("conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3"):
            self.add_module(name, getattr(resnet, name))

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        return OrderedDict(res4=self.layer3(self.layer2(self.layer1(x))))


class Backbone(nn.Module):
    """``body`` (images -> ordered feature maps), then FPN when given; ``out_channels`` and
    ``strides`` describe the named outputs (``res4`` for C4, ``p2``..``p6`` for FPN)."""

    def __init__(
        self, body: nn.Module, out_channels: int, names: list[str], strides: list[int], fpn: nn.Module | None = None
    ):
        super().__init__()
        self.body, self.fpn = body, fpn
        self.out_channels, self.names, self.strides = out_channels, names, strides

    def forward(self, x):
        features = self.body(x)
        if self.fpn is not None:
            features = self.fpn(features)
        return OrderedDict(zip(self.names, features.values()))


def _feature_stages(network: nn.Module) -> tuple[nn.Module, list[int]]:
    """(body returning the stride 4/8/16/32 maps in order, its return_layers, their channels)."""
    if isinstance(network, torchvision.models.ResNet):
        return_layers = {f"layer{i}": f"res{i + 1}" for i in range(1, 5)}
        return IntermediateLayerGetter(network, return_layers), _channels(network, return_layers)
    if hasattr(network, "feature_info"):  # timm CNN
        import timm

        info = network.feature_info
        last_at = {f["reduction"]: i for i, f in enumerate(info)}  # the last stage at each stride
        picks = [last_at.get(s) for s in FPN_STRIDES]
        if None in picks:
            raise ConfigError(
                f"{type(network).__name__}: FPN needs feature maps at strides {FPN_STRIDES}, timm "
                f"reports {[f['reduction'] for f in info]}"
            )
        nested = any("." in info[i]["module"] for i in picks)  # e.g. EfficientNet's "blocks.1"
        body = timm.models.FeatureListNet(network, out_indices=picks, flatten_sequential=nested)
        return _ListToDict(body), [info[i]["num_chs"] for i in picks]
    features = getattr(network, "features", None)
    if not isinstance(features, nn.Sequential):
        raise ConfigError(
            f"{type(network).__name__}: the FPN layout takes ResNets, torchvision models with a "
            "`features` Sequential (MobileNet, EfficientNet) or timm CNNs"
        )
    strides = _strides(features)
    picks = {s: max(i for i, si in enumerate(strides) if si == s) for s in FPN_STRIDES if s in strides}
    if len(picks) != len(FPN_STRIDES):
        raise ConfigError(f"{type(network).__name__}: FPN needs stages at strides {FPN_STRIDES}, found {strides}")
    return_layers = {str(i): f"res{k + 2}" for k, i in enumerate(picks.values())}
    return IntermediateLayerGetter(features, return_layers), _channels(features, return_layers)


class _ListToDict(nn.Module):
    def __init__(self, body):
        super().__init__()
        self.body = body

    def forward(self, x):
        return OrderedDict((f"res{i + 2}", f) for i, f in enumerate(self.body(x)))


@torch.no_grad()
def _probe(module: nn.Module):
    """``module``'s output for one 64x64 image, in eval mode (BN statistics untouched)."""
    was_training = module.training
    try:
        return module.eval()(torch.zeros(1, 3, 64, 64))
    finally:
        module.train(was_training)


def _strides(features: nn.Sequential) -> list[int]:
    """The output stride after each child of ``features``."""
    strides, x = [], torch.zeros(1, 3, 64, 64)
    with torch.no_grad():
        for child in features:
            was_training = child.training
            x = child.eval()(x)
            child.train(was_training)
            strides.append(64 // x.shape[-1])
    return strides


def _channels(module: nn.Module, return_layers: dict) -> list[int]:
    return [out.shape[1] for out in _probe(IntermediateLayerGetter(module, return_layers)).values()]


def _freeze_resnet(resnet: nn.Module, freeze_at: int) -> None:
    """Detectron2's FREEZE_AT: stage 1 = stem, 2 = res2 (layer1), ...: no gradient, FrozenBN."""
    stages = [("conv1", "bn1")] + [(f"layer{i}",) for i in range(1, 5)]
    for names in stages[:freeze_at]:
        for name in names:
            module = convert_norm(getattr(resnet, name), "FrozenBN")
            setattr(resnet, name, module.requires_grad_(False))


def build_backbone(cfg, network: nn.Module) -> tuple[Backbone, nn.Module | None]:
    """The detector's backbone from a classification ``network`` (weights already loaded), and
    for C4 the res5 box head. Norms per ``MODEL.RESNETS.NORM`` (backbone) and ``MODEL.FPN.NORM``."""
    network.requires_grad_(True).train()
    freeze_at = cfg.MODEL.BACKBONE.FREEZE_AT
    is_resnet = isinstance(network, torchvision.models.ResNet)
    if freeze_at and not is_resnet:
        raise ConfigError(
            f"MODEL.BACKBONE.FREEZE_AT {freeze_at} names ResNet stages; for "
            f"{type(network).__name__} set MODEL.BACKBONE.FREEZE_AT 0"
        )
    if is_resnet:
        _freeze_resnet(network, freeze_at)
    network = convert_norm(network, cfg.MODEL.RESNETS.NORM)  # the stages left trainable
    if layout_of(cfg) == "C4":
        if not is_resnet:
            raise ConfigError(
                f"the C4 layout (MODEL.BACKBONE.NAME build_resnet_backbone) needs a torchvision ResNet, "
                f"got {type(network).__name__}: use an FPN config "
                f"(e.g. configs/det/trees_R_50_FPN_demo.yaml)"
            )
        body = C4Body(network)
        c4 = _probe(body)["res4"].shape[1]
        head = cfg.MODEL.ROI_HEADS.NAME
        if head not in C4_HEADS:
            raise ConfigError(f"MODEL.ROI_HEADS.NAME {head!r}: a C4 model takes one of {C4_HEADS}")
        # res5 has 2 x res4's channels
        extra = norm_layer(cfg.MODEL.RESNETS.NORM)(2 * c4) if head == "Res5ROIHeadsExtraNorm" else None
        return Backbone(body, c4, ["res4"], [16]), Res5Head(network.layer4, extra)
    body, channels = _feature_stages(network)
    fpn_cfg = cfg.MODEL.FPN
    if fpn_cfg.FUSE_TYPE != "sum":
        raise ConfigError(f"MODEL.FPN.FUSE_TYPE {fpn_cfg.FUSE_TYPE!r}: torchvision's FPN sums (set it to 'sum')")
    # Detectron2's FPN: 1x1 lateral + 3x3 output convs (kaiming-uniform a=1, as torchvision's),
    # norm per FPN.NORM, p6 = max-pool(p5, 1, stride 2) (LastLevelMaxPool in both libraries).
    fpn = FeaturePyramidNetwork(channels, fpn_cfg.OUT_CHANNELS, LastLevelMaxPool(), norm_layer(fpn_cfg.NORM))
    names = ["p2", "p3", "p4", "p5", "p6"]
    return Backbone(body, fpn_cfg.OUT_CHANNELS, names, [4, 8, 16, 32, 64], fpn), None


# ----------------------------------------------------------------------------- detector


def _d2_predictor_init(box_predictor: FastRCNNPredictor) -> FastRCNNPredictor:
    # Detectron2's FastRCNNOutputLayers: N(0, 0.01) scores, N(0, 0.001) deltas, zero biases.
    nn.init.normal_(box_predictor.cls_score.weight, std=0.01)
    nn.init.normal_(box_predictor.bbox_pred.weight, std=0.001)
    nn.init.zeros_(box_predictor.cls_score.bias)
    nn.init.zeros_(box_predictor.bbox_pred.bias)
    return box_predictor


def _mask_predictor(in_channels: int, cfg) -> MaskRCNNPredictor:
    # Detectron2's MaskRCNNConvUpsampleHead ends as torchvision's predictor (2x2 deconv, ReLU,
    # 1x1 conv per class); its init: msra deconv, N(0, 0.001) logits, zero biases. torchvision indexes
    # the logits by label 1..C, so channel 0 (background) is there and never read.
    predictor = MaskRCNNPredictor(in_channels, cfg.MODEL.ROI_MASK_HEAD.CONV_DIM, cfg.MODEL.ROI_HEADS.NUM_CLASSES + 1)
    c2_msra_fill(predictor.conv5_mask)
    nn.init.normal_(predictor.mask_fcn_logits.weight, std=0.001)
    nn.init.zeros_(predictor.mask_fcn_logits.bias)
    return predictor


def _pooler(cfg_head, backbone: Backbone, names: list[str]) -> RoIPooler:
    if cfg_head.POOLER_TYPE not in ("ROIAlignV2", "ROIAlign"):
        raise ConfigError(f"POOLER_TYPE {cfg_head.POOLER_TYPE!r}: the torchvision engine has ROIAlignV2 and ROIAlign")
    missing = [n for n in names if n not in backbone.names]
    if missing:
        raise ConfigError(f"IN_FEATURES {names}: the backbone gives {backbone.names}, not {missing}")
    strides = [backbone.strides[backbone.names.index(n)] for n in names]
    return RoIPooler(
        names,
        strides,
        cfg_head.POOLER_RESOLUTION,
        cfg_head.POOLER_SAMPLING_RATIO,
        aligned=cfg_head.POOLER_TYPE == "ROIAlignV2",
    )  # V2: aligned=True; torchvision: always False


def build_rpn(cfg, backbone: Backbone) -> D2RPN:
    rpn, anchors = cfg.MODEL.RPN, cfg.MODEL.ANCHOR_GENERATOR
    levels = list(rpn.IN_FEATURES)
    if levels != backbone.names[: len(levels)] or not levels:
        raise ConfigError(f"MODEL.RPN.IN_FEATURES {levels}: the backbone gives {backbone.names}")
    if anchors.OFFSET != 0.0 or rpn.BBOX_REG_LOSS_TYPE != "smooth_l1" or rpn.HEAD_NAME != "StandardRPNHead":
        raise ConfigError(
            "the torchvision engine supports MODEL.ANCHOR_GENERATOR.OFFSET 0.0, "
            "MODEL.RPN.BBOX_REG_LOSS_TYPE smooth_l1 and MODEL.RPN.HEAD_NAME StandardRPNHead"
        )
    # Detectron2's anchors (torchvision's default is 32..512 over 5 levels): one entry broadcasts to all levels.
    sizes = anchors.SIZES * len(levels) if len(anchors.SIZES) == 1 else anchors.SIZES
    ratios = anchors.ASPECT_RATIOS * len(levels) if len(anchors.ASPECT_RATIOS) == 1 else anchors.ASPECT_RATIOS
    generator = D2AnchorGenerator(tuple(map(tuple, sizes)), tuple(map(tuple, ratios)))
    if len(set(generator.num_anchors_per_location())) != 1:
        raise ConfigError("MODEL.ANCHOR_GENERATOR: every level needs the same number of anchors (sizes x ratios)")
    head = RPNHead(backbone.out_channels, generator.num_anchors_per_location()[0])  # N(0, 0.01) init, as Detectron2
    bg_iou, fg_iou = rpn.IOU_THRESHOLDS
    return D2RPN(
        generator,
        head,
        fg_iou_thresh=fg_iou,
        bg_iou_thresh=bg_iou,
        batch_size_per_image=rpn.BATCH_SIZE_PER_IMAGE,
        positive_fraction=rpn.POSITIVE_FRACTION,
        # Detectron2's top-k (torchvision: 2000/1000 pre, 2000/1000 post), per level and per image in both
        pre_nms_top_n={"training": rpn.PRE_NMS_TOPK_TRAIN, "testing": rpn.PRE_NMS_TOPK_TEST},
        post_nms_top_n={"training": rpn.POST_NMS_TOPK_TRAIN, "testing": rpn.POST_NMS_TOPK_TEST},
        nms_thresh=rpn.NMS_THRESH,
        smooth_l1_beta=rpn.SMOOTH_L1_BETA,
        loss_weight=rpn.LOSS_WEIGHT,
        box_loss_weight=rpn.BBOX_REG_LOSS_WEIGHT,
    )


def build_roi_heads(cfg, backbone: Backbone, res5: nn.Module | None) -> D2RoIHeads:
    model, roi = cfg.MODEL, cfg.MODEL.ROI_HEADS
    box_cfg, num_classes = model.ROI_BOX_HEAD, roi.NUM_CLASSES
    if box_cfg.CLS_AGNOSTIC_BBOX_REG or box_cfg.BBOX_REG_LOSS_TYPE != "smooth_l1":
        raise ConfigError(
            "the torchvision engine supports class-specific smooth_l1 box regression "
            "(MODEL.ROI_BOX_HEAD.CLS_AGNOSTIC_BBOX_REG False, BBOX_REG_LOSS_TYPE smooth_l1)"
        )
    box_pool = _pooler(box_cfg, backbone, list(roi.IN_FEATURES))
    mask_pool = mask_head = mask_predictor = None
    if res5 is not None:  # C4: res5 head, mean-pooled for the predictor
        box_head, box_dim = res5, 2 * backbone.out_channels  # res5 doubles res4's channels (any depth)
        if model.MASK_ON:
            mask_predictor = _mask_predictor(box_dim, cfg)
    else:
        if roi.NAME != "StandardROIHeads" or box_cfg.NAME != "FastRCNNConvFCHead":
            raise ConfigError(
                f"MODEL.ROI_HEADS.NAME {roi.NAME!r} / ROI_BOX_HEAD.NAME {box_cfg.NAME!r}: an FPN "
                "model takes StandardROIHeads with FastRCNNConvFCHead"
            )
        size = box_cfg.POOLER_RESOLUTION
        box_head = FastRCNNConvFCHead(
            (backbone.out_channels, size, size),
            [box_cfg.CONV_DIM] * box_cfg.NUM_CONV,
            [box_cfg.FC_DIM] * box_cfg.NUM_FC,
            norm_layer(box_cfg.NORM),
        )
        for layer in box_head.modules():  # Detectron2: msra convs (as torchvision), xavier-fill FCs
            if isinstance(layer, nn.Linear):
                c2_xavier_fill(layer)
        box_dim = box_cfg.FC_DIM if box_cfg.NUM_FC else box_cfg.CONV_DIM * size * size
        if model.MASK_ON:
            mask_cfg = model.ROI_MASK_HEAD
            mask_pool = _pooler(mask_cfg, backbone, list(roi.IN_FEATURES))
            mask_head = MaskRCNNHeads(
                backbone.out_channels, [mask_cfg.CONV_DIM] * mask_cfg.NUM_CONV, 1, norm_layer(mask_cfg.NORM)
            )
            mask_predictor = _mask_predictor(mask_cfg.CONV_DIM, cfg)
    box_predictor = _d2_predictor_init(FastRCNNPredictor(box_dim, num_classes + 1))  # + background (index 0)
    if roi.IOU_THRESHOLDS != [roi.IOU_THRESHOLDS[0]] or not roi.PROPOSAL_APPEND_GT:
        raise ConfigError(
            "MODEL.ROI_HEADS: the torchvision engine takes one IOU_THRESHOLDS value and PROPOSAL_APPEND_GT True"
        )
    return D2RoIHeads(
        box_pool,
        box_head,
        box_predictor,
        fg_iou_thresh=roi.IOU_THRESHOLDS[0],
        bg_iou_thresh=roi.IOU_THRESHOLDS[0],
        batch_size_per_image=roi.BATCH_SIZE_PER_IMAGE,
        positive_fraction=roi.POSITIVE_FRACTION,
        bbox_reg_weights=tuple(box_cfg.BBOX_REG_WEIGHTS),  # (10, 10, 5, 5) in both libraries
        score_thresh=roi.SCORE_THRESH_TEST,
        nms_thresh=roi.NMS_THRESH_TEST,
        detections_per_img=cfg.TEST.DETECTIONS_PER_IMAGE,
        mask_roi_pool=mask_pool,
        mask_head=mask_head,
        mask_predictor=mask_predictor,
        smooth_l1_beta=box_cfg.SMOOTH_L1_BETA,
        box_loss_weight=box_cfg.BBOX_REG_LOSS_WEIGHT,
    )


def build_detector(cfg, network: nn.Module) -> GeneralizedRCNN:
    """Faster R-CNN (Mask R-CNN when ``MODEL.MASK_ON``) for ``cfg`` around the classification
    ``network`` (a torchvision/timm backbone with its weights loaded)."""
    if cfg.MODEL.META_ARCHITECTURE != "GeneralizedRCNN" or cfg.MODEL.PROPOSAL_GENERATOR.NAME != "RPN":
        raise ConfigError("the torchvision engine builds MODEL.META_ARCHITECTURE GeneralizedRCNN with an RPN")
    if cfg.MODEL.KEYPOINT_ON or cfg.MODEL.LOAD_PROPOSALS:
        raise ConfigError("MODEL.KEYPOINT_ON / LOAD_PROPOSALS are not supported by the torchvision engine")
    backbone, res5 = build_backbone(cfg, network)
    transform = D2Transform(cfg, size_divisible=32 if layout_of(cfg) == "FPN" else 1)
    return GeneralizedRCNN(backbone, build_rpn(cfg, backbone), build_roi_heads(cfg, backbone, res5), transform)

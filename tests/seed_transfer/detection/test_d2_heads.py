"""Converted torchvision ResNets load completely into Detectron2 C4 and FPN models (CPU).

Each model is loaded with DetectionCheckpointer's name-matching heuristics from a file written
by convert_to_detectron2; every converted tensor must land in exactly one model tensor equal
to its source, every backbone/res5 tensor must be one of them, and the Detectron2 features
must equal torchvision's (which checks block types, strides and BN placement, not only names).
"""

import pytest
import torch
import torchvision

pytest.importorskip("detectron2")

from detectron2.checkpoint import DetectionCheckpointer  # noqa: E402
from detectron2.config import get_cfg  # noqa: E402
from detectron2.modeling import ROI_HEADS_REGISTRY, build_model  # noqa: E402

from seed_transfer.detection.convert import (  # noqa: E402
    convert_to_detectron2,
    detectron2_settings,
    write_detectron2_pkl,
)
from seed_transfer.detection.d2 import heads  # noqa: E402

# The model tensors the pretrained file should fill, by model kind.
BACKBONE_PREFIXES = {"c4": ("backbone.", "roi_heads.res5."), "fpn": ("backbone.bottom_up.",)}


def _randomized_resnet(depth: int) -> torchvision.models.ResNet:
    """torchvision ResNet with random BN statistics and affine parameters (the default 1/0 values
    are identical in every layer, so a mix-up between BN layers would go unnoticed)."""
    torch.manual_seed(depth)
    model = torchvision.models.get_model(f"resnet{depth}").eval()
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.weight.data.uniform_(0.5, 1.5)
            module.bias.data.normal_(0, 0.1)
            module.running_mean.normal_(0, 0.1)
            module.running_var.uniform_(0.5, 1.5)
    return model


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    """depth -> (torchvision model, converted dict, .pkl path), built once per depth."""
    cache = {}

    def get(depth: int):
        if depth not in cache:
            model = _randomized_resnet(depth)
            state, skipped = convert_to_detectron2(model.state_dict())
            assert skipped == ["fc.weight", "fc.bias"]
            path = tmp_path_factory.mktemp("d2") / f"r{depth}.pkl"
            write_detectron2_pkl(state, path)
            cache[depth] = model, state, path
        return cache[depth]

    return get


def _settings(depth: int) -> dict:
    with torch.device("meta"):  # names and shapes only
        state = torchvision.models.get_model(f"resnet{depth}").state_dict()
    return detectron2_settings(state)


def _cfg(depth: int, kind: str, head: str = "Res5ROIHeadsExtraNorm", mask: bool = False):
    cfg = get_cfg()
    cfg.MODEL.DEVICE = "cpu"
    cfg.MODEL.BACKBONE.FREEZE_AT = 0
    cfg.MODEL.RESNETS.NORM = "BN"  # SyncBN in the protocol; BN in one CPU process
    cfg.MODEL.ROI_HEADS.NUM_CLASSES = 20
    cfg.MODEL.MASK_ON = mask
    for key, value in _settings(depth).items():  # pixel mean/std, format, depth, strides, widths
        cfg.merge_from_list([key, value])
    if kind == "c4":
        cfg.MODEL.ROI_HEADS.NAME = head
    else:
        cfg.MODEL.BACKBONE.NAME = "build_resnet_fpn_backbone"
        cfg.MODEL.RESNETS.OUT_FEATURES = ["res2", "res3", "res4", "res5"]
        cfg.MODEL.FPN.IN_FEATURES = ["res2", "res3", "res4", "res5"]
        cfg.MODEL.ANCHOR_GENERATOR.SIZES = [[32], [64], [128], [256], [512]]
        cfg.MODEL.RPN.IN_FEATURES = ["p2", "p3", "p4", "p5", "p6"]
        cfg.MODEL.ROI_HEADS.NAME = "StandardROIHeads"
        cfg.MODEL.ROI_HEADS.IN_FEATURES = ["p2", "p3", "p4", "p5"]
        cfg.MODEL.ROI_BOX_HEAD.NAME = "FastRCNNConvFCHead"
        cfg.MODEL.ROI_BOX_HEAD.NUM_FC = 2
        cfg.MODEL.ROI_BOX_HEAD.POOLER_RESOLUTION = 7
    cfg.freeze()
    return cfg


def _load(cfg, path) -> torch.nn.Module:
    model = build_model(cfg).eval()
    DetectionCheckpointer(model).load(str(path))
    return model


def _assert_every_weight_loaded(model, state, kind):
    """Each converted tensor equals exactly one model tensor (a complete-suffix match, as the
    checkpointer matches), and those are all the model's backbone (+ res5 head) tensors."""
    model_state = model.state_dict()
    landed = set()
    for name, value in state.items():
        matches = [k for k in model_state if k == name or k.endswith("." + name)]
        assert len(matches) == 1, f"{name} matches {matches}"
        assert torch.equal(model_state[matches[0]], torch.from_numpy(value)), f"{name} not loaded"
        landed.add(matches[0])
    expected = {
        k
        for k in model_state
        if k.startswith(BACKBONE_PREFIXES[kind])
        and not k.endswith("num_batches_tracked")
        and not k.startswith("roi_heads.res5.norm.")
    }
    assert landed == expected


def _torchvision_features(tv_model, x):
    x = tv_model.maxpool(tv_model.relu(tv_model.bn1(tv_model.conv1(x))))
    res4 = tv_model.layer3(tv_model.layer2(tv_model.layer1(x)))
    return res4, tv_model.layer4(res4)


@pytest.mark.parametrize("kind", ["c4", "fpn"])
@pytest.mark.parametrize("depth", [18, 34, 50])
def test_every_backbone_weight_loads(converted, depth, kind):
    tv_model, state, path = converted(depth)
    model = _load(_cfg(depth, kind), path)
    _assert_every_weight_loaded(model, state, kind)

    x = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        tv_res4, tv_res5 = _torchvision_features(tv_model, x)
        if kind == "c4":
            res4 = model.backbone(x)["res4"]
            res5 = model.roi_heads.res5[:-1](res4)  # without MoCo's extra norm
        else:
            features = model.backbone.bottom_up(x)
            res4, res5 = features["res4"], features["res5"]
    torch.testing.assert_close(res4, tv_res4, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(res5, tv_res5, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("depth, blocks, channels", [(18, 2, 512), (34, 3, 512), (50, 3, 2048)])
def test_res5_head_blocks_and_predictor_channels(depth, blocks, channels):
    model = build_model(_cfg(depth, "c4"))
    res5 = model.roi_heads.res5
    assert len(res5) == blocks + 1 and isinstance(res5.norm, torch.nn.BatchNorm2d)  # + the extra norm
    block_type = "BasicBlock" if depth < 50 else "BottleneckBlock"
    assert all(type(block).__name__ == block_type for block in list(res5)[:-1])
    assert res5[0].stride == 2 and res5[0].in_channels == channels // 2 and res5.norm.num_features == channels
    assert model.roi_heads.box_predictor.cls_score.in_features == channels


def test_c4_r18_forward(converted):
    _, state, path = converted(18)
    model = _load(_cfg(18, "c4", head="Res5ROIHeadsAnyDepth"), path)
    assert not hasattr(model.roi_heads.res5, "norm")
    _assert_every_weight_loaded(model, state, "c4")
    image = torch.randint(0, 256, (3, 64, 64), generator=torch.Generator().manual_seed(0)).float()
    with torch.no_grad():
        outputs = model([{"image": image, "height": 64, "width": 64}])
    instances = outputs[0]["instances"]
    assert instances.image_size == (64, 64) and instances.pred_boxes.tensor.shape[1] == 4


def test_mask_rcnn_c4_r18_loads_and_runs(converted):
    _, state, path = converted(18)
    model = _load(_cfg(18, "c4", mask=True), path)
    _assert_every_weight_loaded(model, state, "c4")
    assert model.roi_heads.mask_head.deconv.in_channels == 512
    image = torch.randint(0, 256, (3, 64, 64), generator=torch.Generator().manual_seed(1)).float()
    with torch.no_grad():
        instances = model([{"image": image, "height": 64, "width": 64}])[0]["instances"]
    assert instances.has("pred_masks")


def test_stock_res5_head_would_skip_r18_layer4(converted):
    """Why the heads exist: Detectron2's Res5ROIHeads is bottleneck-only."""
    _, state, path = converted(18)
    model = _load(_cfg(18, "c4", head="Res5ROIHeads"), path)
    model_state = model.state_dict()
    assert model_state["roi_heads.res5.0.conv1.weight"].shape == (512, 256, 1, 1)  # 3x3 in ResNet-18
    assert not torch.equal(
        model_state["roi_heads.res5.1.conv1.weight"][..., 0, 0],
        torch.from_numpy(state["res5.1.conv1.weight"])[..., 1, 1],
    )
    assert "roi_heads.res5.0.conv3.weight" in model_state and "res5.0.conv3.weight" not in state


def test_register_heads_is_idempotent():
    heads.register_heads()  # already called at import: must not raise
    heads.register_heads()
    assert ROI_HEADS_REGISTRY.get("Res5ROIHeadsAnyDepth") is heads.Res5ROIHeadsAnyDepth
    assert ROI_HEADS_REGISTRY.get("Res5ROIHeadsExtraNorm") is heads.Res5ROIHeadsExtraNorm

"""torchvision-engine detectors hold the loaded backbone exactly, and compute what Detectron2 computes."""

from pathlib import Path

import pytest
import torch

from distill.export import export_student
from distill.models import build_backbone
from seed_transfer.detection.plan import DetRequest, make_plan
from seed_transfer.detection.tv.config import load_run_config
from seed_transfer.detection.tv.train import build_model

REPO = Path(__file__).parents[3]
C4 = REPO / "configs/det/trees_R_18_C4_demo.yaml"
FPN = REPO / "configs/det/trees_R_50_FPN_demo.yaml"


def _student(tmp_path, arch: str) -> tuple[Path, dict]:
    """A student export of ``arch`` with non-trivial BN statistics; returns (file, its state dict)."""
    torch.manual_seed(0)
    network, _ = build_backbone(arch)
    for m in network.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.2, 0.2)
    path = export_student(network, arch, tmp_path / f"{arch}.pth", meta={})
    return path, {k: v for k, v in network.state_dict().items() if not k.endswith("num_batches_tracked")}


def _cfg(config, *opts):
    return load_run_config(make_plan(DetRequest(config, "random", ".", opts=opts, engine="torchvision")))


def _detector_name(key: str, layout: str, arch: str) -> str:
    if arch.startswith("mobilenet"):
        return "backbone.body." + key.removeprefix("features.")
    if layout == "C4" and key.startswith("layer4."):
        return "roi_heads.box_head.res5." + key.removeprefix("layer4.")
    return "backbone.body." + key


@pytest.mark.parametrize(
    "arch,config,layout,norm",
    [
        ("resnet18", C4, "C4", "BN"),
        ("resnet18", FPN, "FPN", "FrozenBN"),
        ("resnet50", C4, "C4", "FrozenBN"),
        ("mobilenet_v3_large", FPN, "FPN", "BN"),
    ],
)
def test_every_backbone_tensor_equals_its_source(tmp_path, arch, config, layout, norm):
    path, source = _student(tmp_path, arch)
    depth = arch.removeprefix("resnet") if arch.startswith("resnet") else "50"
    model, init = build_model(_cfg(config, "MODEL.RESNETS.DEPTH", depth, "MODEL.RESNETS.NORM", norm), str(path))
    assert init == {"init": "checkpoint", "arch": arch, "weights": str(path)}
    detector = model.state_dict()
    compared = 0
    for key, value in source.items():
        if key.startswith("classifier."):  # MobileNetV3's hidden 960 -> 1280 layer: not a feature stage
            continue
        assert torch.equal(detector[_detector_name(key, layout, arch)], value), key
        compared += 1
    assert compared > 0.9 * len(source)
    bn_type = torch.nn.BatchNorm2d if norm == "BN" else __import__("torchvision").ops.FrozenBatchNorm2d
    assert isinstance(model.backbone.body.get_submodule("bn1" if arch.startswith("resnet") else "0.1"), bn_type)


def test_a_mismatched_depth_is_refused(tmp_path):
    path, _ = _student(tmp_path, "resnet18")
    with pytest.raises(ValueError, match="the weights are a resnet18, but the config has MODEL.RESNETS.DEPTH 50"):
        build_model(_cfg(FPN), str(path))


def test_c4_backbone_and_res5_head_match_detectron2(tmp_path):
    pytest.importorskip("detectron2")
    from detectron2.checkpoint import DetectionCheckpointer
    from detectron2.config import get_cfg
    from detectron2.modeling import build_model as build_d2_model
    from detectron2.structures import Boxes

    from seed_transfer.detection.convert import convert_checkpoint
    from seed_transfer.detection.d2.heads import register_heads

    path, _ = _student(tmp_path, "resnet18")
    convert_checkpoint(path, tmp_path / "r18.pkl")
    register_heads()
    d2_cfg = get_cfg()
    d2_cfg.merge_from_file(str(C4))
    d2_cfg.MODEL.DEVICE, d2_cfg.MODEL.WEIGHTS = "cpu", str(tmp_path / "r18.pkl")
    d2_model = build_d2_model(d2_cfg).eval()
    DetectionCheckpointer(d2_model).load(d2_cfg.MODEL.WEIGHTS)
    tv_model, _ = build_model(_cfg(C4), str(path))
    tv_model.eval()

    image = torch.rand(3, 200, 232, generator=torch.Generator().manual_seed(1))  # short side = MIN_SIZE_TEST: no resize
    boxes = torch.tensor([[10.0, 20.0, 100.0, 150.0], [0.0, 0.0, 231.0, 199.0], [50.5, 60.2, 80.3, 90.9]])
    with torch.no_grad():
        d2_input = d2_model.preprocess_image([{"image": image * 255}])  # INPUT.FORMAT RGB, 0-255
        d2_res4 = d2_model.backbone(d2_input.tensor)["res4"]
        tv_input, _ = tv_model.transform([image])
        tv_res4 = tv_model.backbone(tv_input.tensors)["res4"]
        assert tv_res4.shape == d2_res4.shape == (1, 256, 13, 15)
        torch.testing.assert_close(tv_res4, d2_res4, atol=1e-4, rtol=1e-4)
        d2_res5 = d2_model.roi_heads._shared_roi_transform([d2_res4], [Boxes(boxes)])
        tv_res5 = tv_model.roi_heads.box_head(tv_model.roi_heads.box_roi_pool({"res4": tv_res4}, [boxes]))
    assert tv_res5.shape == d2_res5.shape == (3, 512, 7, 7)
    torch.testing.assert_close(tv_res5, d2_res5, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("arch", ["efficientnet_b0", "timm:resnet18"])
def test_other_backbones_train_through_fpn(arch):
    cfg = _cfg(
        FPN,
        "MODEL.MASK_ON",
        "True",
        "INPUT.MIN_SIZE_TRAIN",
        "(64,)",
        "MODEL.RPN.POST_NMS_TOPK_TRAIN",
        "32",
        "MODEL.ROI_HEADS.BATCH_SIZE_PER_IMAGE",
        "16",
    )
    model, init = build_model(cfg, "random", arch=arch)
    assert init["arch"] == arch and model.backbone.names == ["p2", "p3", "p4", "p5", "p6"]
    masks = torch.zeros(1, 80, 96, dtype=torch.uint8)
    masks[0, 10:50, 20:70] = 1
    losses = model.train()(
        [torch.rand(3, 80, 96)],
        [{"boxes": torch.tensor([[20.0, 10.0, 70.0, 50.0]]), "labels": torch.tensor([1]), "masks": masks}],
    )
    assert set(losses) == {"loss_objectness", "loss_rpn_box_reg", "loss_classifier", "loss_box_reg", "loss_mask"}
    sum(losses.values()).backward()
    assert all(torch.isfinite(v) for v in losses.values())

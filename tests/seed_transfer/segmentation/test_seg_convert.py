"""Converted checkpoints load into mmseg's ResNet with no missing key and compute the same features."""

import pytest
import torch
import torchvision

from distill.export import export_student
from seed_transfer.segmentation.convert import convert_checkpoint, convert_to_mmseg
from seed_transfer.segmentation.mmseg_setup import import_mmseg


def _mmseg_resnet(depth: int, state: dict) -> torch.nn.Module:
    import_mmseg()
    from mmseg.models.backbones import ResNet

    model = ResNet(depth=depth, style="pytorch", out_indices=(0, 1, 2, 3))
    result = model.load_state_dict(state, strict=False)
    assert result.missing_keys == [] and result.unexpected_keys == []
    model.eval()  # mmseg ResNet.train() returns None
    return model


@pytest.mark.parametrize("arch,depth", [("resnet18", 18), ("resnet50", 50)])
def test_torchvision_checkpoint_gives_the_same_features(tmp_path, arch, depth):
    torch.manual_seed(0)
    reference = torchvision.models.get_model(arch, weights=None).eval()
    for module in reference.modules():  # non-trivial BN statistics, so a misplaced BN would show
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.1, 0.1)
            module.running_var.uniform_(0.5, 1.5)
    torch.save(reference.state_dict(), tmp_path / "tv.pth")  # torchvision layout, with fc
    report = convert_checkpoint(tmp_path / "tv.pth", tmp_path / "mm.pth", arch=arch)
    assert report["depth"] == depth and report["layout"] == "torchvision"
    assert report["dropped"] == ["fc.weight", "fc.bias"]  # reported by name
    converted = torch.load(tmp_path / "mm.pth", weights_only=True)  # plain tensors and strings
    assert converted["meta"]["depth"] == depth
    model = _mmseg_resnet(depth, converted["state_dict"])
    images = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        features = model(images)[-1]
        x = reference.maxpool(reference.relu(reference.bn1(reference.conv1(images))))
        expected = reference.layer4(reference.layer3(reference.layer2(reference.layer1(x))))
    torch.testing.assert_close(features, expected, rtol=1e-4, atol=1e-4)


def test_seed_student_export_converts(tmp_path):
    backbone = torchvision.models.resnet18(weights=None)
    backbone.fc = torch.nn.Identity()
    export_student(backbone, "resnet18", tmp_path / "student.pth", meta={"strategy": "seed"})
    report = convert_checkpoint(tmp_path / "student.pth", tmp_path / "mm.pth")  # arch from the file
    assert (report["arch"], report["depth"], report["layout"]) == ("resnet18", 18, "seed-student")
    assert (
        report["skipped"] == []
        and report["converted"] == len([k for k in backbone.state_dict() if not k.endswith("num_batches_tracked")]) + 20
    )  # 20 BN counters
    _mmseg_resnet(18, torch.load(tmp_path / "mm.pth", weights_only=True)["state_dict"])


def test_unmatched_keys_are_reported_by_name():
    state = torchvision.models.resnet18(weights=None).state_dict()
    state["projector.0.weight"] = torch.zeros(4, 4)
    converted, skipped, depth = convert_to_mmseg(state)
    assert depth == 18 and skipped == ["fc.weight", "fc.bias", "projector.0.weight"]
    assert "fc.weight" not in converted


def test_non_resnet_is_refused_with_the_reason():
    state = torchvision.models.mobilenet_v2(weights=None).state_dict()
    with pytest.raises(ValueError, match="plain 7x7 stem"):
        convert_to_mmseg(state)
    deep_stem = {"conv1.0.weight": torch.zeros(32, 3, 3, 3)}
    with pytest.raises(ValueError, match="deep stem"):
        convert_to_mmseg(deep_stem)

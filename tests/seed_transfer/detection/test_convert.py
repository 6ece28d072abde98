"""seed_transfer.detection.convert: torchvision ResNet names -> Detectron2 names (no Detectron2
needed). Loading the converted files into Detectron2 models is tested in test_d2_heads.py."""

import pickle
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision
from pickle_files import Payload, python2_pickle, write_pickle

from distill.checkpoints import CheckpointError
from distill.export import export_student
from distill.models import build_backbone
from seed_core.errors import MissingFile
from seed_core.safe_pickle import RefusedPickle
from seed_transfer.detection.convert import (
    convert_checkpoint,
    convert_to_detectron2,
    copy_detectron2_pkl,
    detectron2_settings,
    infer_depth,
    read_detectron2_pkl,
    write_detectron2_pkl,
)

REPO = Path(__file__).resolve().parents[3]


def _resnet_state(arch: str) -> dict[str, torch.Tensor]:
    """A torchvision model's state dict (``fc`` included), uninitialised memory: only names and
    shapes matter here, and the meta device skips the costly init of the deep ResNets."""
    with torch.device("meta"):
        model = torchvision.models.get_model(arch)
    return model.to_empty(device="cpu").state_dict()


def test_naming_follows_moco_and_detectron2():
    state = torchvision.models.resnet18().state_dict()
    converted, skipped = convert_to_detectron2(state)
    expected = {
        "conv1.weight": "stem.conv1.weight",
        "bn1.weight": "stem.conv1.norm.weight",
        "bn1.running_var": "stem.conv1.norm.running_var",
        "layer1.0.conv2.weight": "res2.0.conv2.weight",
        "layer1.1.bn2.bias": "res2.1.conv2.norm.bias",
        "layer2.0.downsample.0.weight": "res3.0.shortcut.weight",
        "layer2.0.downsample.1.running_mean": "res3.0.shortcut.norm.running_mean",
        "layer4.1.bn1.weight": "res5.1.conv1.norm.weight",
    }
    for source, name in expected.items():
        assert isinstance(converted[name], np.ndarray)
        np.testing.assert_array_equal(converted[name], state[source].numpy())
    assert skipped == ["fc.weight", "fc.bias"]
    assert not any("num_batches_tracked" in k for k in converted)  # dropped silently
    # stem 5 + 8 blocks x 2 convs x 5 tensors + 3 shortcuts x 5 tensors; every key converted once
    assert len(converted) == 5 + 8 * 10 + 3 * 5
    assert len(converted) == len([k for k in state if not k.endswith("num_batches_tracked")]) - 2


def test_bottleneck_naming_and_dtype():
    converted, skipped = convert_to_detectron2(_resnet_state("resnet50"))
    assert {
        "res2.0.conv3.weight",
        "res2.0.conv3.norm.running_mean",
        "res5.2.conv3.norm.bias",
        "res2.0.shortcut.weight",
        "res5.0.shortcut.norm.weight",
    } <= set(converted)
    assert converted["res5.2.conv3.weight"].shape == (2048, 512, 1, 1)
    assert all(v.dtype == np.float32 for v in converted.values())
    assert skipped == ["fc.weight", "fc.bias"]


@pytest.mark.parametrize(
    "arch, depth", [("resnet18", 18), ("resnet34", 34), ("resnet50", 50), ("resnet101", 101), ("resnet152", 152)]
)
def test_depth_inferred_from_blocks_and_block_type(arch, depth):
    state = _resnet_state(arch)
    assert infer_depth(state) == depth
    converted, _ = convert_to_detectron2(state, depth=depth)  # an explicit depth that agrees
    blocks_in_res4 = {k.split(".")[1] for k in converted if k.startswith("res4.")}
    assert len(blocks_in_res4) == {18: 2, 34: 6, 50: 6, 101: 23, 152: 36}[depth]


def test_explicit_depth_must_match_the_weights():
    with pytest.raises(ValueError, match=r"depth=50 .* ResNet-34"):
        convert_to_detectron2(_resnet_state("resnet34"), depth=50)


def test_settings_for_basic_bottleneck_resnext_and_wide():
    assert detectron2_settings(_resnet_state("resnet18")) == {
        "INPUT.FORMAT": "RGB",
        "MODEL.PIXEL_MEAN": [123.675, 116.280, 103.530],
        "MODEL.PIXEL_STD": [58.395, 57.120, 57.375],
        "MODEL.RESNETS.DEPTH": 18,
        "MODEL.RESNETS.STRIDE_IN_1X1": False,
        "MODEL.RESNETS.RES2_OUT_CHANNELS": 64,
    }
    groups = {
        arch: (s["MODEL.RESNETS.RES2_OUT_CHANNELS"], s["MODEL.RESNETS.NUM_GROUPS"], s["MODEL.RESNETS.WIDTH_PER_GROUP"])
        for arch in ("resnet50", "resnext50_32x4d", "wide_resnet50_2")
        for s in [detectron2_settings(_resnet_state(arch))]
    }
    assert groups == {"resnet50": (256, 1, 64), "resnext50_32x4d": (256, 32, 4), "wide_resnet50_2": (256, 1, 128)}


def test_keys_outside_the_backbone_are_skipped_and_reported():
    state = dict(torchvision.models.resnet18().state_dict())
    state["projector.0.weight"] = torch.randn(128, 512)
    state["queue"] = torch.randn(128, 16)
    converted, skipped = convert_to_detectron2(state)
    assert skipped == ["fc.weight", "fc.bias", "projector.0.weight", "queue"]
    assert len(converted) == 100


def test_mobilenet_is_refused_naming_what_was_found():
    state = torchvision.models.mobilenet_v3_small().state_dict()
    with pytest.raises(ValueError) as err:
        convert_to_detectron2(state)
    message = str(err.value)
    assert "features.0.0.weight" in message
    assert "ResNets only" in message and "torchvision detection engine" in message


@pytest.mark.parametrize(
    "edit, found",
    [
        (lambda s: {("conv1.0.weight" if k == "conv1.weight" else k): v for k, v in s.items()}, "deep stem"),
        (lambda s: {**s, "layer2.0.downsample.2.weight": torch.ones(128)}, "downsample.2"),
        (lambda s: {k: v for k, v in s.items() if not k.startswith("layer4.1.")}, r"\[2, 2, 2, 1\] blocks"),
        (lambda s: {**s, "layer1.0.bn1.weight": torch.ones(64, 1)}, "layer1.0.bn1.weight has shape"),
    ],
)
def test_resnet_variants_detectron2_cannot_hold_are_refused(edit, found):
    state = edit(dict(torchvision.models.resnet18().state_dict()))
    with pytest.raises(ValueError, match=found):
        convert_to_detectron2(state)


def test_pkl_written_as_moco_does_and_read_back(tmp_path):
    state = torchvision.models.resnet18().state_dict()
    converted, _ = convert_to_detectron2(state)
    path = tmp_path / "out" / "r18.pkl"
    write_detectron2_pkl(converted, path, meta={"arch": "resnet18"})
    with open(path, "rb") as f:
        obj = pickle.load(f, encoding="latin1")  # as DetectionCheckpointer reads .pkl files
    assert obj["__author__"] == "seed-transfer" and obj["matching_heuristics"] is True
    assert obj["arch"] == "resnet18"
    assert list(obj["model"]) == list(converted)
    for name, value in converted.items():
        np.testing.assert_array_equal(obj["model"][name], value)
    np.testing.assert_array_equal(obj["model"]["stem.conv1.weight"], state["conv1.weight"].numpy())
    assert list(tmp_path.joinpath("out").iterdir()) == [path]  # no temporary file left behind


def test_convert_checkpoint_student_export(tmp_path):
    backbone = build_backbone("resnet18")[0]
    export_student(backbone, "resnet18", tmp_path / "student.pth", {"teacher": "resnet50"})
    report = convert_checkpoint(tmp_path / "student.pth", tmp_path / "student.pkl")  # arch from the file
    assert report["arch"] == "resnet18" and report["depth"] == 18 and report["layout"] == "seed-student"
    assert report["converted"] == 100 and report["skipped"] == []
    assert report["settings"]["MODEL.RESNETS.RES2_OUT_CHANNELS"] == 64
    with open(tmp_path / "student.pkl", "rb") as f:
        model = pickle.load(f)["model"]
    np.testing.assert_array_equal(model["res5.1.conv2.weight"], backbone.layer4[1].conv2.weight.detach().numpy())


def test_convert_checkpoint_mocov2_takes_encoder_q(tmp_path):
    query, key = build_backbone("resnet18")[0].state_dict(), build_backbone("resnet18")[0].state_dict()
    state = {
        **{f"module.encoder_q.{k}": v for k, v in query.items()},
        **{f"module.encoder_k.{k}": v for k, v in key.items()},
        "module.encoder_q.fc.0.weight": torch.randn(512, 512),
        "module.encoder_q.fc.0.bias": torch.randn(512),
        "module.encoder_q.fc.2.weight": torch.randn(128, 512),
        "module.encoder_q.fc.2.bias": torch.randn(128),
        "module.queue": torch.randn(128, 64),
        "module.queue_ptr": torch.zeros(1, dtype=torch.long),
    }
    torch.save({"epoch": 200, "arch": "resnet18", "state_dict": state}, tmp_path / "moco.pth.tar")
    report = convert_checkpoint(tmp_path / "moco.pth.tar", tmp_path / "moco.pkl")
    assert report["layout"] == "mocov2" and report["converted"] == 100
    assert set(report["dropped"]) == {"encoder_k", "queue", "queue_ptr"}
    with open(tmp_path / "moco.pkl", "rb") as f:
        model = pickle.load(f)["model"]
    np.testing.assert_array_equal(model["stem.conv1.norm.running_mean"], query["bn1.running_mean"].numpy())
    assert not np.array_equal(model["stem.conv1.weight"], key["conv1.weight"].numpy())


def test_convert_checkpoint_refuses_a_mobilenet_student(tmp_path):
    export_student(build_backbone("mobilenet_v3_small")[0], "mobilenet_v3_small", tmp_path / "mbv3.pth", {})
    with pytest.raises(ValueError, match=r"mobilenet_v3_small.*ResNets only"):
        convert_checkpoint(tmp_path / "mbv3.pth", tmp_path / "mbv3.pkl")
    assert not (tmp_path / "mbv3.pkl").exists()


def test_cli_reports_every_skipped_key(tmp_path):
    torch.save(torchvision.models.resnet18().state_dict(), tmp_path / "tv.pth")
    cmd = [
        sys.executable,
        str(REPO / "tools" / "convert_to_d2.py"),
        str(tmp_path / "tv.pth"),
        str(tmp_path / "tv.pkl"),
        "--arch",
        "resnet18",
    ]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "converted 100 tensors" in result.stdout
    assert "fc.weight, fc.bias" in result.stdout  # the classifier the loader left out
    assert "MODEL.RESNETS.STRIDE_IN_1X1: false" in result.stdout
    assert (tmp_path / "tv.pkl").is_file()
    bad = subprocess.run(
        cmd[:2] + [str(tmp_path / "missing.pth"), str(tmp_path / "x.pkl")],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert bad.returncode == 2 and "missing.pth" in bad.stderr


# ---------------------------------------------------------------- a given .pkl: restricted unpickler, then a copy


def _moco_pkl(model=None) -> dict:
    """What MoCo's convert-pretrain-to-detectron2.py pickles."""
    model = model if model is not None else {"stem.conv1.weight": np.ones((4, 3, 7, 7), np.float32)}
    return {"model": model, "__author__": "MOCO", "matching_heuristics": True}


def test_a_moco_pkl_is_read_and_copied_as_it_is(tmp_path):
    converted, _ = convert_to_detectron2(torchvision.models.resnet18().state_dict())
    path = write_pickle(tmp_path / "moco_r18.pkl", _moco_pkl(converted))
    assert copy_detectron2_pkl(path, tmp_path / "out" / "backbone_d2.pkl") == len(converted)
    with open(tmp_path / "out" / "backbone_d2.pkl", "rb") as f:
        copied = pickle.load(f, encoding="latin1")  # as DetectionCheckpointer reads it
    assert copied["__author__"] == "MOCO" and copied["matching_heuristics"] is True
    assert list(copied["model"]) == list(converted)
    for name, value in converted.items():
        np.testing.assert_array_equal(copied["model"][name], value)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["backbone_d2.pkl"]  # no temporary left


def test_a_caffe2_pkl_from_python2_is_read(tmp_path):
    """Caffe2's model-zoo layout, pickled by Python 2: ``{"blobs": {...}}``, ``*_momentum`` dropped by Detectron2."""
    blobs = {"conv1_w": np.ones((64, 3, 7, 7), np.float32), "conv1_w_momentum": 0.9, "res_conv1_bn_s": np.ones(64)}
    (tmp_path / "R-50.pkl").write_bytes(python2_pickle({"blobs": blobs}))
    obj = read_detectron2_pkl(tmp_path / "R-50.pkl")
    assert list(obj["blobs"]) == list(blobs) and obj["blobs"]["conv1_w"].shape == (64, 3, 7, 7)


def test_a_pkl_with_a_payload_is_refused_and_never_runs(tmp_path):
    marker = tmp_path / "marker"
    path = write_pickle(tmp_path / "moco.pkl", _moco_pkl({"stem.conv1.weight": Payload(marker)}))
    with pytest.raises(RefusedPickle) as refused:
        copy_detectron2_pkl(path, tmp_path / "out" / "backbone_d2.pkl")
    assert str(refused.value) == (
        f"{path}: refused to unpickle 'posix.system': a weights file holds only arrays, numbers and strings"
    )
    assert "allow_unsafe_pickle" not in str(refused.value)  # no key lets a .pkl run code
    assert not marker.exists() and not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "contents, error",
    [
        ([np.ones(3)], "is not a Detectron2 weights file (it holds a list, not a dict)"),
        ({"model": {}, "__author__": "x"}, "is not a Detectron2 weights file (no name -> array mapping"),
        (_moco_pkl({"stem.conv1.weight": [1.0, 2.0]}), "weight 'stem.conv1.weight' is a list, not a numpy array"),
        ({"blobs": {"conv1_w": "text"}}, "weight 'conv1_w' is a str, not a numpy array"),
    ],
    ids=["a list", "no weights", "a list as a weight", "text as a blob"],
)
def test_a_pkl_detectron2_cannot_load_is_refused_naming_it(tmp_path, contents, error):
    path = write_pickle(tmp_path / "w.pkl", contents)
    with pytest.raises(CheckpointError, match=re.escape(f"{path}: {error}" if error.startswith("weight") else error)):
        read_detectron2_pkl(path)


def test_a_truncated_missing_or_folder_pkl_names_the_file(tmp_path):
    path = write_pickle(tmp_path / "w.pkl", _moco_pkl())
    path.write_bytes(path.read_bytes()[:60])
    with pytest.raises(CheckpointError, match=re.escape(f"{path} is truncated or not a pickle (")):
        read_detectron2_pkl(path)
    with pytest.raises(MissingFile, match=re.escape(f"Detectron2 weights file not found: {tmp_path / 'no.pkl'}")):
        read_detectron2_pkl(tmp_path / "no.pkl")
    with pytest.raises(CheckpointError, match="is a directory"):
        read_detectron2_pkl(tmp_path)

"""distill.checkpoints: synthetic files laid out like the published ones, built from real
torchvision/timm state dicts with random values (so that a tensor taken from the wrong
place, or left at its initial value, shows up)."""

import argparse
import io
import re

import numpy as np
import pytest
import timm
import torch
import torch.nn as nn
import torchvision
from safetensors.torch import save_file

from distill.checkpoints import (
    LAYOUTS,
    CheckpointError,
    build_head,
    detect_layout,
    head_out_dim,
    load_pretrained,
    parse_checkpoint,
)
from distill.export import STUDENT_FORMAT
from seed_core.checkpoint_files import safe_load


class Recipe:
    """An arbitrary class: the safe unpickler must refuse it."""

    def __init__(self, steps):
        self.steps = steps


def _randomized(model: nn.Module) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    return {
        k: torch.randn(v.shape, generator=generator) if v.is_floating_point() else torch.full_like(v, 7)
        for k, v in model.state_dict().items()
    }


def _without(sd: dict, *prefixes: str) -> dict:
    return {k: v for k, v in sd.items() if not k.startswith(prefixes)}


def _prefixed(sd: dict, prefix: str) -> dict:
    return {prefix + k: v for k, v in sd.items()}


def _bn(dim: int, affine: bool = True) -> dict[str, torch.Tensor]:
    sd = {
        "running_mean": torch.randn(dim),
        "running_var": torch.rand(dim) + 0.5,
        "num_batches_tracked": torch.tensor(1000),
    }
    return {"weight": torch.randn(dim), "bias": torch.randn(dim), **sd} if affine else sd


def _linear(out_dim: int, in_dim: int, bias: bool = True) -> dict[str, torch.Tensor]:
    sd = {"weight": torch.randn(out_dim, in_dim)}
    return {**sd, "bias": torch.randn(out_dim)} if bias else sd


def _head(*layers: tuple[int, dict]) -> dict[str, torch.Tensor]:
    """An nn.Sequential state dict from (index, layer state dict) pairs."""
    return {f"{i}.{k}": v for i, sd in layers for k, v in sd.items()}


@pytest.fixture(scope="module")
def sources():
    """Full (classifier included) state dicts, randomised, built once."""
    return {
        "resnet50": _randomized(torchvision.models.resnet50()),
        "resnet18": _randomized(torchvision.models.resnet18()),
        "mobilenet_v3_small": _randomized(torchvision.models.mobilenet_v3_small()),
        "timm:mobilenetv3_small_050": _randomized(timm.create_model("mobilenetv3_small_050")),
        "timm:resnet18": _randomized(timm.create_model("resnet18")),
    }


_OPTIMIZER = {"state": {}, "param_groups": [{"lr": 0.03, "momentum": 0.9, "params": [0, 1]}]}


def _stand_in(sd: dict) -> dict:
    """Same keys, 1-element values: the parts a loader must drop (momentum encoders, students)."""
    return {k: torch.zeros(1) for k in sd}


def _mocov1(src):
    head = _head((0, _linear(128, 2048)))
    encoder = {**_without(src["resnet50"], "fc."), "fc.weight": head["0.weight"], "fc.bias": head["0.bias"]}
    sd = {
        **_prefixed(encoder, "module.encoder_q."),
        **_prefixed(_stand_in(encoder), "module.encoder_k."),
        "module.queue": torch.randn(128, 4096),
        "module.queue_ptr": torch.zeros(1, dtype=torch.long),
    }
    return {"epoch": 200, "arch": "resnet50", "state_dict": sd, "optimizer": _OPTIMIZER}, head


def _mocov2(src):
    head = _head((0, _linear(2048, 2048)), (2, _linear(128, 2048)))
    encoder = {**_without(src["resnet50"], "fc."), **_prefixed(head, "fc.")}
    sd = {
        **_prefixed(encoder, "encoder_q."),
        **_prefixed(_stand_in(encoder), "encoder_k."),
        "queue": torch.randn(128, 4096),
        "queue_ptr": torch.zeros(1, dtype=torch.long),
    }
    # Saved without DataParallel: no "module." prefix.
    return {"epoch": 200, "arch": "resnet50", "state_dict": sd, "optimizer": _OPTIMIZER}, head


def _mocov3(src):
    projector = _head(
        (0, _linear(4096, 2048, bias=False)),
        (1, _bn(4096)),
        (3, _linear(256, 4096, bias=False)),
        (4, _bn(256, affine=False)),
    )
    predictor = _head((0, _linear(4096, 256, bias=False)), (1, _bn(4096)), (3, _linear(256, 4096, bias=False)))
    encoder = {**_without(src["resnet50"], "fc."), **_prefixed(projector, "fc.")}
    sd = {
        **_prefixed(encoder, "module.base_encoder."),
        **_prefixed(_stand_in(encoder), "module.momentum_encoder."),
        **_prefixed(predictor, "module.predictor."),
    }
    return {"epoch": 100, "arch": "resnet50", "state_dict": sd, "optimizer": _OPTIMIZER, "scaler": {}}, projector


def _swav(src):
    head = _head((0, _linear(2048, 2048)), (1, _bn(2048)), (3, _linear(128, 2048)))
    sd = {
        **_without(src["resnet50"], "fc."),
        **_prefixed(head, "projection_head."),
        "prototypes.weight": torch.randn(3000, 128),
    }
    return _prefixed(sd, "module."), head


def _simclr(src):
    return {"state_dict": src["resnet50"]}, None


def _dino(src):
    teacher = {
        **_prefixed(_without(src["resnet50"], "fc."), "backbone."),
        **_prefixed(_head((0, _linear(256, 2048)), (2, _linear(256, 256))), "head.mlp."),
        "head.last_layer.weight_g": torch.ones(1024, 1),
        "head.last_layer.weight_v": torch.randn(1024, 256),
    }
    obj = {
        "student": _prefixed(_stand_in(teacher), "module."),
        "teacher": _prefixed(teacher, "module."),
        "optimizer": _OPTIMIZER,
        "epoch": 100,
        "args": argparse.Namespace(arch="resnet50", out_dim=1024),
        "dino_loss": {"center": torch.randn(1, 1024)},
    }
    return obj, None


def _plain(arch):
    return lambda src: (src[arch], None)


def _student(src):
    backbone = _without(src["mobilenet_v3_small"], "classifier.3.")  # build_backbone keeps classifier.0
    return {
        "format": STUDENT_FORMAT,
        "arch": "mobilenet_v3_small",
        "state_dict": backbone,
        "meta": {"teacher": "mocov2", "step": 5},
    }, None


CASES = {  # id: (make, load as arch, layout=, detected, backbone source, source keys not in the backbone)
    "seed-student": (_student, "mobilenet_v3_small", "auto", "seed-student", "mobilenet_v3_small", "classifier.3."),
    "mocov1": (_mocov1, "resnet50", "auto", "mocov1", "resnet50", "fc."),
    "mocov2": (_mocov2, "resnet50", "auto", "mocov2", "resnet50", "fc."),
    "mocov3": (_mocov3, "resnet50", "auto", "mocov3", "resnet50", "fc."),
    "swav": (_swav, "resnet50", "auto", "swav", "resnet50", "fc."),
    "simclr": (_simclr, "resnet50", "auto", "simclr", "resnet50", "fc."),
    "dino": (_dino, "resnet50", "auto", "dino", "resnet50", "fc."),
    "dino-backbone-only": (
        lambda src: (_without(src["resnet50"], "fc."), None),
        "resnet50",
        "dino",
        "torchvision",
        "resnet50",
        "fc.",
    ),
    "torchvision-resnet": (_plain("resnet18"), "resnet18", "auto", "torchvision", "resnet18", "fc."),
    "torchvision-mobilenet": (
        _plain("mobilenet_v3_small"),
        "mobilenet_v3_small",
        "auto",
        "torchvision",
        "mobilenet_v3_small",
        "classifier.3.",
    ),
    "timm-mobilenet": (
        _plain("timm:mobilenetv3_small_050"),
        "timm:mobilenetv3_small_050",
        "timm",
        "timm",
        "timm:mobilenetv3_small_050",
        "classifier.",
    ),
    "timm-resnet": (_plain("timm:resnet18"), "timm:resnet18", "timm", "torchvision", "timm:resnet18", "fc."),
}


@pytest.mark.parametrize("case", list(CASES))
def test_layout_round_trip(case, sources, tmp_path):
    make, arch, layout, detected, source, not_backbone = CASES[case]
    obj, head_sd = make(sources)
    path = tmp_path / "checkpoint.pth"
    torch.save(obj, path)

    assert detect_layout(safe_load(path)) == detected
    backbone, head, parsed = load_pretrained(path, arch, layout=layout)

    assert parsed.layout == (detected if layout == "auto" else layout)
    expected = _without(sources[source], not_backbone)
    state = backbone.state_dict()
    assert state.keys() == expected.keys()
    for key, value in expected.items():
        assert torch.equal(state[key], value), key
    if head_sd is None:
        assert head is None and parsed.head is None
    else:
        assert head.state_dict().keys() == head_sd.keys()
        for key, value in head_sd.items():
            assert torch.equal(head.state_dict()[key], value), key


def test_head_structures(sources):
    _, v1 = _mocov1(sources)
    assert [type(m) for m in build_head(v1)] == [nn.Linear]
    _, v2 = _mocov2(sources)
    assert [type(m) for m in build_head(v2)] == [nn.Linear, nn.ReLU, nn.Linear] and head_out_dim(v2) == 128
    _, swav = _swav(sources)
    assert [type(m) for m in build_head(swav)] == [nn.Linear, nn.BatchNorm1d, nn.ReLU, nn.Linear]
    _, v3 = _mocov3(sources)
    head = build_head(v3)
    assert [type(m) for m in head] == [nn.Linear, nn.BatchNorm1d, nn.ReLU, nn.Linear, nn.BatchNorm1d]
    assert head[0].bias is None and head[1].affine and not head[4].affine and head_out_dim(v3) == 256
    assert head.eval()(torch.randn(2, 2048)).shape == (2, 256)


def test_meta_and_dropped_parts(sources):
    parsed = parse_checkpoint(_dino(sources)[0])
    assert parsed.meta["arch"] == "resnet50" and parsed.meta["epoch"] == 100 and parsed.meta["dropped"]
    parsed = parse_checkpoint(_swav(sources)[0])
    assert parsed.meta["dropped"] == ["prototypes"] and not any("prototypes" in k for k in parsed.backbone)
    parsed = parse_checkpoint(_student(sources)[0])
    assert parsed.meta == {"teacher": "mocov2", "step": 5, "arch": "mobilenet_v3_small"}
    assert parse_checkpoint(sources["resnet18"]).meta["dropped"] == ["fc.weight", "fc.bias"]


def test_safetensors(sources, tmp_path):
    path = tmp_path / "model.safetensors"
    save_file(sources["resnet18"], str(path))
    backbone, head, parsed = load_pretrained(path, "resnet18")
    assert parsed.layout == "torchvision" and head is None
    for key, value in backbone.state_dict().items():
        assert torch.equal(value, sources["resnet18"][key]), key


def test_plain_classes_load_safely(sources, tmp_path):
    path = tmp_path / "supervised.pth.tar"
    torch.save(
        {
            "epoch": 90,
            "arch": "resnet18",
            "state_dict": _prefixed(sources["resnet18"], "module."),
            "best_acc1": np.float64(69.7),
            "step": np.int64(3),
            "dtype": np.dtype("float32"),
            "args": argparse.Namespace(lr=0.1),
        },
        path,
    )
    obj = safe_load(path)
    assert obj["best_acc1"] == 69.7 and obj["args"].lr == 0.1
    assert parse_checkpoint(obj).layout == "torchvision"


def test_numpy_1_scalars_load_safely(tmp_path):
    """Files written under numpy 1.x name numpy.core.multiarray.scalar (numpy 2: numpy._core)."""
    buffer = io.BytesIO()
    torch.save({"best_acc1": np.float64(76.1)}, buffer, _use_new_zipfile_serialization=False)  # a bare pickle
    path = tmp_path / "numpy1.pth"
    path.write_bytes(re.sub(rb"numpy\._?core\.multiarray", b"numpy.core.multiarray", buffer.getvalue()))
    assert safe_load(path)["best_acc1"] == 76.1


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere.pth"):
        load_pretrained(tmp_path / "nowhere.pth", "resnet18")


def test_arbitrary_class_needs_opt_in(sources, tmp_path):
    path = tmp_path / "pickled.pth"
    torch.save({"state_dict": sources["resnet18"], "recipe": Recipe(["crop", "flip"])}, path)
    with pytest.raises(CheckpointError) as info:
        load_pretrained(path, "resnet18")
    message = str(info.value)
    assert "Recipe" in message and str(path) in message
    assert "allow_unsafe_pickle" not in message  # the caller names no option: none is suggested
    with pytest.raises(CheckpointError) as info:  # the option of the tool at hand, and no other
        load_pretrained(path, "resnet18", unsafe_option="model.allow_unsafe_pickle=true")
    assert "model.allow_unsafe_pickle=true unpickles arbitrary code" in str(info.value)
    assert "teacher." not in str(info.value)
    backbone, _, parsed = load_pretrained(path, "resnet18", allow_unsafe_pickle=True)
    assert parsed.layout == "torchvision"
    assert torch.equal(backbone.state_dict()["conv1.weight"], sources["resnet18"]["conv1.weight"])


@pytest.mark.parametrize("obj", [{"model": {"conv.weight": torch.zeros(1)}, "epoch": 3}, [torch.zeros(1)]])
def test_unknown_layout(obj, tmp_path):
    path = tmp_path / "unknown.pth"
    torch.save(obj, path)
    with pytest.raises(CheckpointError, match="unknown checkpoint layout") as info:
        load_pretrained(path, "resnet18")
    assert all(layout in str(info.value) for layout in LAYOUTS)
    if isinstance(obj, dict):
        assert "'model'" in str(info.value) and "conv.weight" in str(info.value)


@pytest.mark.parametrize(
    "content, message",
    [
        (b"not a pickle", r"notes.pth is not a checkpoint \(it starts with b'not ', not with the zip or pickle header"),
        (b"", r"notes.pth is not a checkpoint \(it is empty\): check the path"),
    ],
)
def test_not_a_checkpoint(tmp_path, content, message):
    path = tmp_path / "notes.pth"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match=message):
        safe_load(path)


@pytest.mark.parametrize("legacy", [False, True])
def test_a_truncated_checkpoint_is_called_damaged(tmp_path, legacy):
    whole = io.BytesIO()
    torch.save({"state_dict": {"w": torch.zeros(4096)}}, whole, _use_new_zipfile_serialization=not legacy)
    path = tmp_path / "cut.pth"
    path.write_bytes(whole.getvalue()[: len(whole.getvalue()) - 1000])
    with pytest.raises(CheckpointError, match=r"cut.pth is truncated or damaged \(.+\): copy or download it again"):
        safe_load(path)


def test_a_truncated_safetensors_file_is_called_damaged(tmp_path):
    path = tmp_path / "cut.safetensors"
    save_file({"w": torch.zeros(4096)}, path)
    path.write_bytes(path.read_bytes()[:-1000])
    with pytest.raises(CheckpointError, match="cut.safetensors is truncated or damaged"):
        safe_load(path)


def test_a_directory_is_not_a_checkpoint(tmp_path):
    with pytest.raises(CheckpointError, match=f"{tmp_path} is a directory, not a checkpoint"):
        safe_load(tmp_path)


def test_explicit_layout_mismatch(sources, tmp_path):
    obj, _ = _mocov2(sources)
    path = tmp_path / "moco_v2_800ep_pretrain.pth.tar"
    torch.save(obj, path)
    with pytest.raises(CheckpointError, match="moco_v2_800ep_pretrain.pth.tar: expected a swav checkpoint.*mocov2"):
        load_pretrained(path, "resnet50", layout="swav")
    with pytest.raises(CheckpointError, match="expected a swav checkpoint.*mocov2"):
        parse_checkpoint(obj, layout="swav")
    with pytest.raises(CheckpointError, match="expected a torchvision checkpoint.*dino"):
        parse_checkpoint(_dino(sources)[0], layout="torchvision")
    with pytest.raises(CheckpointError, match="expected a mocov1 checkpoint, but the file matches no known layout"):
        parse_checkpoint({"model": {}}, layout="mocov1")
    with pytest.raises(CheckpointError, match="unknown layout 'moco'"):
        parse_checkpoint(obj, layout="moco")


def test_wrong_architecture_names_keys_and_shapes(sources, tmp_path):
    path = tmp_path / "moco_r50.pth.tar"
    torch.save(_mocov2(sources)[0], path)
    with pytest.raises(CheckpointError) as info:
        load_pretrained(path, "resnet18")
    message = str(info.value)
    assert "layer1.0.conv1.weight: checkpoint (64, 64, 1, 1) vs model (64, 64, 3, 3)" in message
    assert "layer1.0.conv3.weight" in message and "unexpected" in message
    assert "look like resnet50" in message and "arch='resnet50'" in message and str(path) in message


def test_an_edited_tensor_is_named_with_both_shapes_not_blamed_on_the_architecture(sources, tmp_path):
    student, _ = _student(sources)
    student["state_dict"]["features.0.0.weight"] = student["state_dict"]["features.0.0.weight"][:, :, :2, :2].clone()
    path = tmp_path / "edited_student.pth"
    torch.save(student, path)
    with pytest.raises(CheckpointError) as info:
        load_pretrained(path, None)
    message = str(info.value)
    assert message.startswith(f"{path} (layout seed-student) does not fit the MobileNetV3 backbone: every name fits")
    assert "or an edited file" in message and "wrong architecture" not in message
    assert "shape mismatches (1): features.0.0.weight: checkpoint (16, 3, 2, 2) vs model (16, 3, 3, 3)" in message


def test_missing_keys_are_listed(sources, tmp_path):
    path = tmp_path / "partial.pth"
    torch.save(_without(sources["resnet18"], "layer4."), path)
    with pytest.raises(CheckpointError, match=r"missing from the checkpoint \(25\): layer4.0.conv1.weight"):
        load_pretrained(path, "resnet18")


def test_mocov3_vit_is_refused_clearly():
    sd = {
        "module.base_encoder.cls_token": torch.zeros(1, 1, 384),
        "module.base_encoder.blocks.0.attn.qkv.weight": torch.zeros(1152, 384),
        "module.base_encoder.head.0.weight": torch.zeros(4096, 384),
    }
    with pytest.raises(CheckpointError, match="only ResNet MoCo v3"):
        parse_checkpoint({"state_dict": sd, "epoch": 300})


UNUSED = {  # case: what the one log line must name (parts the backbone and head do not use)
    "mocov1": ["encoder_k.* (", "queue (", "queue_ptr (1 value)", "entry 'optimizer'"],
    "mocov2": ["encoder_k.* (", "queue (", "queue_ptr (1 value)", "entry 'optimizer'"],
    "mocov3": ["momentum_encoder.* (", "predictor.* (", "entry 'optimizer'", "entry 'scaler'"],
    "swav": ["prototypes.* (0.4M values)"],
    "simclr": ["fc.* (2 tensors, 2.0M values)"],
    "dino": ["teacher head.* (", "student.* (", "entry 'optimizer'", "entry 'dino_loss'"],
    "torchvision-resnet": ["fc.* (2 tensors, 0.5M values)"],
}


@pytest.mark.parametrize("case", list(UNUSED))
def test_what_the_file_holds_but_the_model_does_not_use_is_logged(case, sources, tmp_path, caplog):
    make, arch, layout, *_ = CASES[case]
    path = tmp_path / "teacher.pth"
    torch.save(make(sources)[0], path)
    with caplog.at_level("INFO", logger="distill.checkpoints"):
        load_pretrained(path, arch, layout=layout)
    (line,) = [r.getMessage() for r in caplog.records if "not used" in r.getMessage()]
    assert line.startswith(f"{path} (layout ") and "\n" not in line
    for part in UNUSED[case]:
        assert part in line, (part, line)
    assert "projection head" not in line and "entry 'epoch'" not in line and "entry 'arch'" not in line


def test_a_head_that_is_not_wanted_is_not_built_and_is_logged(sources, tmp_path, caplog):
    path = tmp_path / "moco_v2.pth.tar"
    torch.save(_mocov2(sources)[0], path)
    with caplog.at_level("INFO", logger="distill.checkpoints"):
        _, head, parsed = load_pretrained(path, "resnet50", use_head=False)
    assert head is None and parsed.head is not None  # the parse still describes the file
    assert "projection head (use_head=False) (4 tensors, 4.5M values)" in caplog.text


def test_a_student_export_logs_nothing_unused(sources, tmp_path, caplog):
    path = tmp_path / "student.pth"
    torch.save(_student(sources)[0], path)
    with caplog.at_level("INFO", logger="distill.checkpoints"):
        load_pretrained(path, None)
    assert "not used" not in caplog.text


def test_mocov3_without_projector_loads_only_when_the_head_is_not_wanted(sources, tmp_path):
    obj, _ = _mocov3(sources)
    obj["state_dict"] = _without(obj["state_dict"], "module.base_encoder.fc.")
    path = tmp_path / "r-50-300ep-no-projector.pth.tar"
    torch.save(obj, path)
    with pytest.raises(CheckpointError) as error:
        load_pretrained(path, "resnet50")
    assert str(error.value) == (
        f"{path}: this MoCo v3 file has no projector (base_encoder.fc.*); set "
        "teacher.use_head=false to use its pooled backbone features instead"
    )
    backbone, head, parsed = load_pretrained(path, "resnet50", use_head=False)
    assert head is None and parsed.layout == "mocov3"
    for key, value in _without(sources["resnet50"], "fc.").items():
        assert torch.equal(backbone.state_dict()[key], value), key

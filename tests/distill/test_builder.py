"""The method builder wires published teacher layouts to students of the right head size."""

import pytest
import torch
import torchvision

from distill.builder import build_method
from distill.methods import SEED, L2Distill, MoCo, SEEDMoCo
from distill.schema import DistillConfig
from seed_core.config import load_config


@pytest.fixture(scope="module")
def mocov2_r18(tmp_path_factory):
    """A MoCo v2 checkpoint laid out as main_moco.py writes it, on a ResNet-18 encoder."""
    torch.manual_seed(0)
    encoder = torchvision.models.resnet18()
    encoder.fc = torch.nn.Sequential(torch.nn.Linear(512, 512), torch.nn.ReLU(), torch.nn.Linear(512, 128))
    state = {f"module.encoder_q.{k}": v for k, v in encoder.state_dict().items()}
    state.update({f"module.encoder_k.{k}": v.clone() for k, v in encoder.state_dict().items()})
    state["module.queue"] = torch.randn(128, 16)
    state["module.queue_ptr"] = torch.zeros(1, dtype=torch.long)
    path = tmp_path_factory.mktemp("ckpt") / "moco_v2.pth.tar"
    torch.save({"epoch": 200, "arch": "resnet18", "state_dict": state, "optimizer": {}}, path)
    return path, encoder


def config(weights, *overrides):
    return load_config(
        DistillConfig,
        None,
        [
            "data.root=/unused",
            f"teacher.weights={weights}",
            "teacher.arch=resnet18",
            "student.arch=mobilenet_v3_small",
            "distill.queue_size=64",
            "optim.batch_size=32",
            "data.image_size=32",
            *overrides,
        ],
    )


@pytest.mark.parametrize("strategy,cls", [("seed", SEED), ("l2", L2Distill), ("seed+moco", SEEDMoCo)])
def test_teacher_head_fixes_the_student_embedding(mocov2_r18, strategy, cls):
    path, encoder = mocov2_r18
    method = build_method(config(path, f"distill.strategy={strategy}"))
    assert isinstance(method, cls)
    assert method.student.head[-1].out_features == 128  # the MoCo v2 head's output
    encoder.eval()
    x = torch.randn(2, 3, 32, 32)
    expected = torch.nn.functional.normalize(encoder(x), dim=1)
    assert torch.allclose(method.teacher(x), expected, atol=1e-5)
    if strategy != "l2":
        assert method.queue.embeddings.shape == (64, 128)


def test_without_head_the_teacher_uses_pooled_features(mocov2_r18):
    path, _ = mocov2_r18
    method = build_method(config(path, "teacher.use_head=false"))
    assert method.student.head[-1].out_features == 512 and method.queue.embeddings.shape == (64, 512)


def test_a_mocov3_file_without_its_projector_is_a_teacher_only_without_head(tmp_path):
    encoder = torchvision.models.resnet18().state_dict()
    path = tmp_path / "mocov3_no_projector.pth.tar"
    torch.save(
        {
            "epoch": 300,
            "state_dict": {f"module.base_encoder.{k}": v for k, v in encoder.items() if not k.startswith("fc.")},
        },
        path,
    )
    with pytest.raises(ValueError, match="no projector.*teacher.use_head=false"):
        build_method(config(path))
    method = build_method(config(path, "teacher.use_head=false"))
    assert method.queue.embeddings.shape == (64, 512)  # pooled ResNet-18 features


def test_plain_moco_needs_no_teacher():
    cfg = load_config(
        DistillConfig,
        None,
        [
            "data.root=/x",
            "distill.strategy=moco",
            "student.arch=resnet18",
            "student.embed_dim=64",
            "distill.queue_size=128",
            "optim.batch_size=32",
        ],
    )
    method = build_method(cfg)
    assert isinstance(method, MoCo) and not hasattr(method, "teacher")
    assert method.moco.queue.embeddings.shape == (128, 64)


def test_wrong_teacher_architecture_is_reported(mocov2_r18):
    path, _ = mocov2_r18
    with pytest.raises(ValueError, match="resnet50"):
        build_method(config(path, "teacher.arch=resnet50"))


@pytest.mark.parametrize(
    "arch,dim",
    [("resnet34", 512), ("mobilenet_v3_large", 1280), ("efficientnet_b0", 1280), ("timm:mobilenetv3_small_050", 1024)],
)
def test_students_by_name(arch, dim):
    from distill.builder import build_student

    student = build_student(arch, out_dim=16)
    assert student.head[0].in_features == dim
    out = student.eval()(torch.randn(2, 3, 64, 64))
    assert out.shape == (2, 16) and torch.allclose(out.norm(dim=1), torch.ones(2), atol=1e-5)


def test_unknown_student_suggests_names():
    from distill.models import build_backbone

    with pytest.raises(ValueError, match="arch=resnet181: unknown architecture; close matches: resnet18, "):
        build_backbone("resnet181")

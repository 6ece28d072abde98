"""seed+dense (issue 30 item 4): the feature maps the dense term reads, caught during the ordinary
forwards, equal the maps computed by hand; with dense_weight 0 it trains exactly as SEED; it resumes
exactly; it refuses the teacher cache, whose entries hold no patch features."""

import csv
import math

import pytest
import torch
from test_trainer import assert_same_state, student_of, training_state
from tiny import make_image_folder
from train_worker import run, tiny_config

from distill.feature_maps import FeatureMapTap
from distill.models import build_backbone
from distill.vit import dinov2_vit
from seed_core.config import ConfigError

timm = pytest.importorskip("timm")


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    return make_image_folder(tmp_path_factory.mktemp("images"), classes=2, per_class=8)  # 16 images, 2 steps/epoch


def _eval(arch):
    torch.manual_seed(0)
    backbone, _ = build_backbone(arch)
    return backbone.eval()


@torch.no_grad()
def test_a_resnet_map_is_its_last_stage():
    backbone, images = _eval("resnet18"), torch.randn(2, 3, 64, 64)
    tap = FeatureMapTap(backbone)
    backbone(images)
    b = backbone
    by_hand = b.layer4(b.layer3(b.layer2(b.layer1(b.maxpool(b.relu(b.bn1(b.conv1(images))))))))
    assert tap.map.shape == (2, 512, 2, 2) and torch.equal(tap.map, by_hand)


@torch.no_grad()
def test_a_mobilenet_v2_map_is_its_features():
    backbone, images = _eval("mobilenet_v2"), torch.randn(2, 3, 112, 112)
    tap = FeatureMapTap(backbone)
    backbone(images)
    assert tap.map.shape == (2, 1280, 4, 4) and torch.equal(tap.map, backbone.features(images))


@torch.no_grad()
def test_a_timm_vit_map_is_its_patch_tokens_on_the_grid():
    backbone, images = _eval("timm:vit_tiny_patch16_224"), torch.randn(2, 3, 48, 80)
    tap = FeatureMapTap(backbone)
    backbone(images)
    tokens = backbone.forward_features(images)[:, backbone.num_prefix_tokens :]  # N x (3*5) x 192, row by row
    assert tap.map.shape == (2, 192, 3, 5)
    assert torch.equal(tap.map[:, :, 1, 2], tokens[:, 1 * 5 + 2])  # row 1, column 2


@torch.no_grad()
@pytest.mark.parametrize("registers", [0, 4])
def test_a_dino_vit_map_leaves_out_class_and_register_tokens(registers):
    torch.manual_seed(0)
    vit = dinov2_vit(embed_dim=32, depth=1, num_heads=2, grid_size=4, registers=registers).eval()
    images = torch.randn(2, 3, 28, 42)
    tap = FeatureMapTap(vit)
    vit(images)
    patches = vit.tokens(images)[:, 1 + registers :]  # N x (2*3) x 32
    assert tap.map.shape == (2, 32, 2, 3)
    assert torch.equal(tap.map.flatten(2).transpose(1, 2), patches)


def test_a_backbone_without_a_map_is_refused():
    with pytest.raises(ValueError, match="no global average pool"):
        FeatureMapTap(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 4)))


def test_with_dense_weight_zero_it_trains_exactly_as_seed(tmp_path, data_root):
    run(data_root, tmp_path / "seed", "distill.strategy=seed")
    run(data_root, tmp_path / "dense0", "distill.strategy=seed+dense", "distill.dense_weight=0")
    assert_same_state(student_of(tmp_path / "seed"), student_of(tmp_path / "dense0"))


def test_the_dense_term_trains_logs_and_resumes_exactly(tmp_path, data_root):
    run(data_root, tmp_path / "full", "distill.strategy=seed+dense")
    run(data_root, tmp_path / "parts", "distill.strategy=seed+dense", "train.max_steps=3")
    run(data_root, tmp_path / "parts", "distill.strategy=seed+dense", resume=True)
    assert_same_state(training_state(tmp_path / "full"), training_state(tmp_path / "parts"))
    state = training_state(tmp_path / "full")
    assert state["projector.weight"].shape == (16, 16, 1, 1)  # tiny student map 16 -> tiny teacher map 16
    rows = list(csv.DictReader(open(tmp_path / "full" / "metrics.csv")))
    assert all(math.isfinite(float(row["loss_dense"])) and float(row["loss_dense"]) > 0 for row in rows)
    run(data_root, tmp_path / "seed", "distill.strategy=seed")
    student, seed_student = student_of(tmp_path / "full"), student_of(tmp_path / "seed")
    assert any(not torch.equal(student[key], seed_student[key]) for key in student)  # the dense term moved it


def test_the_teacher_cache_is_refused(tmp_path, data_root):
    with pytest.raises(ConfigError, match="seed\\+dense needs the live teacher's patch features"):
        tiny_config(data_root, tmp_path, "distill.strategy=seed+dense", f"teacher.cache_dir={tmp_path / 'cache'}")

"""ViT students (issue 30 item 3): timm's ViT-Tiny/16 at any input size that is a multiple of its patch,
trained with SEED, MoCo v2 and L2, exported, read back, and evaluated by the classification protocols;
detection transfer refuses it in one line (its engines fine-tune ResNets only)."""

import csv
import math

import pytest
import torch
from tiny import make_image_folder, tiny_cnn

from distill.builder import build_method
from distill.checkpoints import load_pretrained
from distill.models import build_backbone
from distill.schema import DistillConfig
from distill.teacher import FrozenTeacher
from seed_core.config import load_config

timm = pytest.importorskip("timm")

VIT_TINY = "timm:vit_tiny_patch16_224"


@pytest.mark.parametrize("size", [(32, 32), (64, 64), (48, 80), (224, 224)])
def test_a_vit_student_takes_any_multiple_of_its_patch(size):
    torch.manual_seed(0)
    backbone, dim = build_backbone(VIT_TINY)
    backbone.eval()
    assert dim == 192
    assert backbone(torch.randn(2, 3, *size)).shape == (2, 192)


def test_its_weights_are_those_of_the_fixed_size_model():
    """The files stay timm's: same keys and shapes, and at 224 px the same output as the fixed-size model."""
    torch.manual_seed(0)
    backbone, _ = build_backbone(VIT_TINY)
    fixed = timm.create_model("vit_tiny_patch16_224", pretrained=False, num_classes=0)
    state = backbone.state_dict()
    assert {k: v.shape for k, v in state.items()} == {k: v.shape for k, v in fixed.state_dict().items()}
    fixed.load_state_dict(state)
    images = torch.randn(2, 3, 224, 224)
    backbone.eval(), fixed.eval()
    with torch.no_grad():
        torch.testing.assert_close(backbone(images), fixed(images), rtol=0, atol=0)


def _distil(images, out, strategy):
    cfg = load_config(
        DistillConfig,
        None,
        [
            f"data.root={images}",
            "data.image_size=32",
            "data.num_workers=0",
            f"student.arch={VIT_TINY}",
            "teacher.weights=in-memory" if strategy != "moco" else "teacher.weights=null",
            f"distill.strategy={strategy}",
            "distill.queue_size=8",
            "optim.batch_size=4",
            "optim.epochs=1",
            "optim.warmup_epochs=0",
            "train.max_steps=2",
            "train.log_every=1",
            "train.tensorboard=false",
            f"train.output_dir={out}",
        ],
    )
    from distill.trainer import train

    teacher = None
    if strategy != "moco":
        torch.manual_seed(123)
        teacher = FrozenTeacher(tiny_cnn()[0], torch.nn.Linear(16, 8))
    method = build_method(cfg, teacher=teacher) if teacher is not None else None
    return train(cfg, method=method)


@pytest.mark.slow
@pytest.mark.parametrize("strategy", ["seed", "moco", "l2"])
def test_a_vit_tiny_student_trains_exports_and_reads_back(strategy, tmp_path):
    images = make_image_folder(tmp_path / "images", classes=2, per_class=4, size=40)
    student = _distil(images, tmp_path / "run", strategy)
    rows = list(csv.DictReader(open(tmp_path / "run" / "metrics.csv")))
    assert [int(row["step"]) for row in rows] == [1, 2] and all(math.isfinite(float(row["loss"])) for row in rows)
    backbone, _, parsed = load_pretrained(student, None)
    assert parsed.layout == "seed-student" and parsed.meta["arch"] == VIT_TINY
    exported = torch.load(student, weights_only=True)["state_dict"]
    assert all(torch.equal(backbone.state_dict()[k], v) for k, v in exported.items())
    backbone.eval()
    assert backbone(torch.randn(1, 3, 32, 32)).shape == (1, 192)


@pytest.fixture(scope="module")
def vit_student(tmp_path_factory):
    root = tmp_path_factory.mktemp("vit_student")
    images = make_image_folder(root / "images", classes=2, per_class=4, size=40)
    return _distil(images, root / "run", "seed")


@pytest.mark.slow
def test_the_classification_protocols_evaluate_a_vit_student(vit_student, tmp_path):
    from seed_transfer.classification.schema import TransferClsConfig
    from seed_transfer.classification.transfer import run_cls_transfer

    folder = tmp_path / "data"
    make_image_folder(folder / "train", classes=3, per_class=10, size=40, seed=0)
    make_image_folder(folder / "test", classes=3, per_class=4, size=40, seed=1)
    cfg = load_config(
        TransferClsConfig,
        None,
        [
            f"model.weights={vit_student}",
            "model.arch=null",
            "data.name=imagefolder",
            f"data.root={folder}",
            "features.resize=32",
            "features.crop=32",
            "features.num_workers=0",
            "features.cache_dir=null",
            "linear.num_c=3",
            "linear.n_jobs=1",
            "knn.k=3",
            "fewshot.enabled=true",
            "fewshot.shots=[1]",
            "fewshot.n_way=3",
            "fewshot.n_query=2",
            "fewshot.episodes=5",
            f"output_dir={tmp_path / 'out'}",
        ],
    )
    result = run_cls_transfer(cfg)
    assert result["arch"] == VIT_TINY and result["feature_dim"] == 192
    assert 0 <= result["linear"]["score"] <= 100 and 0 <= result["knn"]["score"] <= 100
    assert result["fewshot"]  # one entry per K, each scored over its episodes


def test_detection_transfer_refuses_a_vit_student_in_one_line(vit_student):
    from seed_transfer.detection.convert import convert_to_detectron2

    state = torch.load(vit_student, weights_only=True)["state_dict"]
    with pytest.raises(ValueError, match="supports ResNets only") as refused:
        convert_to_detectron2(state)
    assert "\n" not in str(refused.value)


@pytest.mark.slow
def test_the_imagenet_linear_probe_evaluates_a_vit_student(vit_student, tmp_path, capsys):
    import importlib.util
    import json
    from pathlib import Path

    from seed_transfer.cli import eval_linear

    spec = importlib.util.spec_from_file_location(
        "tiny_bn", Path(__file__).parents[1] / "seed_transfer/imagenet/tiny_bn.py"
    )
    tiny_bn = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tiny_bn)
    root = tiny_bn.make_imagenet(tmp_path / "imagenet", classes=2, train_per_class=4, val_per_class=2, size=40)
    config = Path(__file__).parents[2] / "configs/eval/linear_imagenet.yaml"
    overrides = [
        f"model.weights={vit_student}",
        f"data.root={root}",
        "data.train_crop=32",
        "data.num_workers=0",
        "features.resize=36",
        "features.crop=32",
        "optim.epochs=1",
        "optim.batch_size=4",
        "optim.milestones=[1]",
        "train.tensorboard=false",
        f"train.output_dir={tmp_path / 'out'}",
    ]
    assert eval_linear.main(["--config", str(config), *overrides]) == 0
    assert "linear probe: top-1" in capsys.readouterr().out
    result = json.loads((tmp_path / "out" / "linear_eval.json").read_text())
    assert result["steps"] == 2

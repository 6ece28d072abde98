from pathlib import Path

import pytest
import torch
from tiny_bn import TINY_BN, make_imagenet

from seed_core.config import ConfigError, load_config
from seed_transfer.backbones import load_backbone
from seed_transfer.imagenet.schema import SemisupConfig
from seed_transfer.imagenet.semisup import run_semisup

REPO = Path(__file__).parents[3]


def semisup_config(tmp_path, root, subset, *extra, base="semisup_1pct.yaml"):
    return load_config(
        SemisupConfig,
        REPO / "configs/eval" / base,
        [
            "model.weights=random",
            f"model.arch={TINY_BN}",
            f"data.root={root}",
            f"data.subset_file={subset}",
            "data.train_crop=12",
            "data.num_workers=0",
            "features.resize=14",
            "features.crop=12",
            "optim.epochs=2",
            "optim.batch_size=4",
            "optim.base_lr=0.5",
            "optim.head_lr_scale=2",
            "train.tensorboard=false",
            f"train.output_dir={tmp_path / 'out'}",
            *extra,
        ],
    )


def test_protocol_configs_hold_simclr_settings():
    one = load_config(
        SemisupConfig,
        REPO / "configs/eval/semisup_1pct.yaml",
        ["data.root=/x", "data.subset_file=/x/1.txt", "model.weights=/x/s.pth"],
    )
    ten = load_config(
        SemisupConfig,
        REPO / "configs/eval/semisup_10pct.yaml",
        ["data.root=/x", "data.subset_file=/x/1.txt", "model.weights=/x/s.pth"],
    )
    assert (one.optim.epochs, ten.optim.epochs) == (60, 30)
    assert one.optim.nesterov and one.optim.momentum == 0.9 and one.optim.weight_decay == 0.0
    assert one.optim.base_lr == 0.05 and one.optim.batch_size == 256


def test_fine_tuning_updates_the_backbone_and_scores_val(tmp_path):
    root = make_imagenet(tmp_path / "imagenet", classes=3, train_per_class=5, val_per_class=2)
    (tmp_path / "subset.txt").write_text(
        "n00000000_0.JPEG\nn00000000_1.JPEG\nn00000001_2.JPEG\nn00000002_3.JPEG\nn00000002_4.JPEG\nn00000001_0.JPEG\n"
    )
    cfg = semisup_config(tmp_path, root, tmp_path / "subset.txt")
    result = run_semisup(cfg)
    assert result["train_images"] == 6 and result["val_images"] == 6 and result["num_classes"] == 3
    assert result["steps"] == 4 and result["finished"]  # 2 epochs of ceil(6 / 4) = 2 steps
    assert 0 <= result["final"]["top1"] <= result["final"]["top5"] <= 100
    initial, _ = load_backbone("random", TINY_BN, seed=cfg.model.seed)
    tuned = torch.load(tmp_path / "out" / "checkpoint.pth", weights_only=True)["model"]
    conv = "backbone.0.weight"
    assert not torch.equal(tuned[conv], initial.state_dict()["0.weight"])  # the backbone was trained
    assert not torch.equal(tuned["backbone.1.running_mean"], initial.state_dict()["1.running_mean"])  # BN in train mode
    assert set(k for k in tuned if k.startswith("head.")) == {"head.weight", "head.bias"}


def test_a_missing_subset_image_stops_before_training(tmp_path):
    root = make_imagenet(tmp_path / "imagenet", classes=2, train_per_class=2, val_per_class=1)
    (tmp_path / "subset.txt").write_text("n00000000_0.JPEG\nn00000001_9.JPEG\n")
    with pytest.raises(FileNotFoundError, match="1 of the 2 images.*/n00000001/n00000001_9.JPEG"):
        run_semisup(semisup_config(tmp_path, root, tmp_path / "subset.txt"))
    assert not (tmp_path / "out" / "checkpoint.pth").exists()


@pytest.mark.parametrize(
    "override, message",
    [
        ("data.subset_file=null", "data.subset_file is required"),
        ("features.cached=true", "cannot be cached"),
        ("optim.schedule=linear", "optim.schedule"),
        ("optim.lr=0.1", "unknown config key 'optim.lr'"),
    ],
)
def test_bad_settings_name_the_key(tmp_path, override, message):
    with pytest.raises(ConfigError, match=message):
        semisup_config(tmp_path, tmp_path, tmp_path / "subset.txt", override)

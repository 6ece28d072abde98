import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from tiny_bn import TINY_BN, make_imagenet, tiny_bn_cnn

from seed_core.config import load_config
from seed_transfer.classification.features import Features
from seed_transfer.classification.schema import TransferClsConfig
from seed_transfer.imagenet.data import KeyedFeatures, LabelledFeatures
from seed_transfer.imagenet.knn import run_knn_eval
from seed_transfer.imagenet.linear_probe import LinearProbe, linear_head, run_linear_probe
from seed_transfer.imagenet.schema import EvalOptimConfig, EvalTrainConfig, LinearEvalConfig
from seed_transfer.imagenet.trainer import TrainJob, fit, lr_schedule, topk_correct

REPO = Path(__file__).parents[3]


def blobs(n_per_class: int, seed: int, classes: int = 4, dim: int = 8) -> Features:
    """Linearly separable features: class c is a tight cluster around 3 * e_c."""
    rng = np.random.default_rng(seed)
    targets = np.repeat(np.arange(classes), n_per_class)
    features = 3 * np.eye(dim, dtype=np.float32)[targets] + rng.normal(0, 0.3, (len(targets), dim)).astype(np.float32)
    return Features(features, targets)


def test_topk_correct_and_schedules_by_hand():
    logits = torch.tensor([[0.1, 0.7, 0.2], [0.5, 0.3, 0.2], [0.2, 0.3, 0.5]])
    assert topk_correct(logits, torch.tensor([1, 1, 0]), ks=(1, 2, 5)) == [1, 2, 3]
    step = lr_schedule(EvalOptimConfig(epochs=10, batch_size=512, base_lr=30, milestones=[6, 8]), steps_per_epoch=2)
    assert (
        step[:12] == [60.0] * 12 and step[12:16] == pytest.approx([6.0] * 4) and step[16:] == pytest.approx([0.6] * 4)
    )
    cosine = lr_schedule(EvalOptimConfig(epochs=2, batch_size=256, base_lr=0.05, schedule="cosine"), 4)
    assert cosine[0] == pytest.approx(0.05) and cosine[4] == pytest.approx(0.025) and len(cosine) == 8


def test_probe_on_separable_features_reaches_full_accuracy(tmp_path):
    head = linear_head(8, 4, seed=0)
    job = TrainJob(
        model=head,
        trained=head,
        param_groups=[{"params": list(head.parameters()), "lr_scale": 1.0}],
        train_set=KeyedFeatures(blobs(40, seed=0)),
        val_set=LabelledFeatures(blobs(25, seed=1)),
    )
    result = fit(
        job,
        EvalOptimConfig(epochs=10, batch_size=32, base_lr=8.0, milestones=[6, 8]),
        EvalTrainConfig(output_dir=str(tmp_path), tensorboard=False, eval_every=5),
        num_workers=0,
    )
    assert result["final"]["top1"] == 100.0 and result["final"]["images"] == 100
    assert result["steps"] == result["total_steps"] == 50 and result["finished"]
    assert [e["epoch"] for e in result["evals"]] == [5.0, 10.0]
    rows = (tmp_path / "metrics.csv").read_text().splitlines()
    assert rows[0] == "step,loss,lr,epoch,val_top1,val_top5,seconds" and len(rows) == 1 + 50 // 20 + 2


def test_frozen_backbone_keeps_its_weights_and_bn_statistics():
    backbone, _ = tiny_bn_cnn()
    backbone(torch.randn(8, 3, 12, 12) * 3 + 1)  # give the BN layers non-default running statistics
    before = {k: v.clone() for k, v in backbone.state_dict().items()}
    probe = LinearProbe(backbone, linear_head(16, 3, seed=0))
    probe.train()
    assert probe.training and probe.head.training and not probe.backbone.training
    assert not any(p.requires_grad for p in probe.backbone.parameters())
    optimizer = torch.optim.SGD(probe.head.parameters(), lr=1.0)
    for _ in range(3):
        loss = torch.nn.functional.cross_entropy(probe(torch.randn(8, 3, 12, 12)), torch.randint(0, 3, (8,)))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    after = backbone.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # running_mean/var, num_batches_tracked too


def probe_config(tmp_path, root, *extra):
    return load_config(
        LinearEvalConfig,
        REPO / "configs/eval/linear_imagenet.yaml",
        [
            "model.weights=random",
            f"model.arch={TINY_BN}",
            f"data.root={root}",
            "data.train_crop=12",
            "data.num_workers=0",
            "features.resize=14",
            "features.crop=12",
            "features.num_workers=0",
            f"features.cache_dir={tmp_path / 'cache'}",
            "optim.epochs=4",
            "optim.batch_size=6",
            "optim.milestones=[3]",
            "optim.base_lr=5",
            "train.tensorboard=false",
            "train.eval_every=2",
            "train.log_every=1",
            f"train.output_dir={tmp_path / 'out'}",
            *extra,
        ],
    )


def test_image_probe_trains_the_head_only_and_resume_matches_an_uninterrupted_run(tmp_path):
    root = make_imagenet(tmp_path / "imagenet", classes=3, train_per_class=4, val_per_class=2)
    full = run_linear_probe(probe_config(tmp_path / "full", root))
    assert full["finished"] and full["steps"] == 8 and full["val_images"] == 6
    assert 0 <= full["final"]["top1"] <= full["final"]["top5"] <= 100
    ckpt = torch.load(tmp_path / "full" / "out" / "checkpoint.pth", weights_only=True)
    assert set(ckpt["model"]) == {"weight", "bias"}  # the classifier only: the backbone never changes

    part = tmp_path / "part"
    first = run_linear_probe(probe_config(part, root, "train.max_steps=3"))
    assert first["steps"] == 3 and not first["finished"]
    # What a run killed after its step-3 checkpoint leaves: rows of steps 4-5, a half-written save.
    metrics = part / "out" / "metrics.csv"
    with metrics.open("a") as f:
        f.write("4,0.1,5,2.0,nan,nan,0.1\r\n5,0.1,5,2.5,nan,nan,0.1\r\n")
    (part / "out" / ".checkpoint.pth.0123abcd.tmp").write_bytes(b"half a checkpoint")
    resumed = run_linear_probe(probe_config(part, root), resume=True)
    assert [int(line.split(",")[0]) for line in metrics.read_text().splitlines()[1:]] == list(range(1, 9))
    assert not list((part / "out").glob(".checkpoint.pth.*.tmp"))
    saved = torch.load(part / "out" / "checkpoint.pth", weights_only=True)
    for key in ("weight", "bias"):
        torch.testing.assert_close(saved["model"][key], ckpt["model"][key], rtol=0, atol=0)
    assert resumed["final"] == full["final"] and resumed["steps"] == 8
    assert json.loads((part / "out" / "linear_eval.json").read_text())["final"] == full["final"]
    with pytest.raises(Exception, match="cannot resume"):
        run_linear_probe(probe_config(part, root, "optim.base_lr=1"), resume=True)


def test_cached_probe_reads_the_features_that_knn_cached(tmp_path):
    root = make_imagenet(tmp_path / "imagenet", classes=3, train_per_class=4, val_per_class=2)
    knn = load_config(
        TransferClsConfig,
        REPO / "configs/eval/knn_imagenet.yaml",
        [
            "model.weights=random",
            f"model.arch={TINY_BN}",
            f"data.root={root}",
            "features.resize=14",
            "features.crop=12",
            "features.num_workers=0",
            f"features.cache_dir={tmp_path / 'cache'}",
            "knn.k=3",
            f"output_dir={tmp_path / 'knn'}",
        ],
    )
    assert run_knn_eval(knn)["features_cached"] is False
    cached_files = sorted((tmp_path / "cache").iterdir())
    result = run_linear_probe(probe_config(tmp_path, root, "features.cached=true"))
    assert sorted((tmp_path / "cache").iterdir()) == cached_files  # nothing extracted again
    assert result["features_cached"] and result["train_images"] == 12 and math.isfinite(result["final"]["top1"])


def test_missing_val_folder_is_a_clear_error(tmp_path):
    root = make_imagenet(tmp_path / "imagenet", classes=2, train_per_class=2, val_per_class=1)
    shutil.rmtree(root / "val")
    for extra in ([], ["features.cached=true"]):
        with pytest.raises(FileNotFoundError, match="val"):
            run_linear_probe(probe_config(tmp_path, root, *extra))

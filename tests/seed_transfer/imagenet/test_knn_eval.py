import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from tiny import TINY, make_image_folder

from seed_core.config import load_config
from seed_transfer.classification.schema import TransferClsConfig
from seed_transfer.imagenet.knn import run_knn_eval, topk_accuracy

REPO = Path(__file__).parents[3]


def test_topk_accuracy_by_hand():
    scores = torch.tensor([[0.1, 0.7, 0.2], [0.5, 0.3, 0.2], [0.2, 0.3, 0.5]])
    labels = torch.tensor([1, 1, 0])
    assert topk_accuracy(scores, labels, 1) == pytest.approx(100 / 3)  # only row 0
    assert topk_accuracy(scores, labels, 2) == pytest.approx(200 / 3)  # rows 0 and 1
    assert topk_accuracy(scores, labels, 5) == 100.0  # k clamped to the 3 classes


def test_knn_eval_on_an_imagenet_style_folder_shares_the_feature_cache(tmp_path):
    make_image_folder(tmp_path / "data" / "train", classes=3, per_class=6, size=12, seed=0)
    make_image_folder(tmp_path / "data" / "val", classes=3, per_class=2, size=12, seed=1)
    overrides = [
        "model.weights=random",
        f"model.arch={TINY}",
        f"data.root={tmp_path / 'data'}",
        "features.resize=16",
        "features.crop=16",
        "features.num_workers=0",
        f"features.cache_dir={tmp_path / 'cache'}",
        "knn.k=5",
        f"output_dir={tmp_path / 'out'}",
    ]
    cfg = load_config(TransferClsConfig, REPO / "configs/eval/knn_imagenet.yaml", overrides)
    first = run_knn_eval(cfg, chunk_size=2)
    assert (first["bank"], first["queries"]) == (18, 6) and first["features_cached"] is False
    assert 0 <= first["knn"]["top1"] <= first["knn"]["top5"] <= 100
    second = run_knn_eval(cfg)  # unchunked; same answer, features from the cache
    assert second["features_cached"] is True and second["knn"] == first["knn"]
    assert json.loads(Path(first["path"]).read_text())["knn"] == first["knn"]


def test_cli_reports_a_missing_val_folder(tmp_path):
    make_image_folder(tmp_path / "data" / "train", classes=2, per_class=2, size=8)
    cmd = [
        sys.executable,
        str(REPO / "tools/eval_knn.py"),
        "--config",
        str(REPO / "configs/eval/knn_imagenet.yaml"),
        "model.weights=random",
        "model.arch=resnet18",
        f"data.root={tmp_path / 'data'}",
        f"features.cache_dir={tmp_path / 'cache'}",
        f"output_dir={tmp_path / 'out'}",
        "features.num_workers=0",
    ]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert result.returncode == 2 and "needs an ImageNet-style val folder" in result.stderr


def test_knn_demo_reads_the_linear_probe_demo_folder_and_cache():
    from seed_transfer.imagenet.schema import LinearEvalConfig

    knn = load_config(TransferClsConfig, REPO / "configs/eval/knn_digits_demo.yaml")
    linear = load_config(LinearEvalConfig, REPO / "configs/eval/linear_digits_demo.yaml")
    assert knn.data.root == f"{linear.train.output_dir}/data"  # where the linear demo writes the digits
    assert (knn.features.resize, knn.features.crop, knn.features.cache_dir) == (
        linear.features.resize,
        linear.features.crop,
        linear.features.cache_dir,
    )  # the same cached features
    assert (knn.model.weights, knn.model.arch) == (linear.model.weights, linear.model.arch)

"""The torchvision engine's training recipe and a few real iterations on the tree tiles (CPU)."""

import json
from pathlib import Path

import pytest
import torch

from seed_transfer.detection.plan import DetRequest, make_plan
from seed_transfer.detection.transfer import run_detection_transfer
from seed_transfer.detection.tv.config import load_config, load_run_config
from seed_transfer.detection.tv.data import IterationBatches
from seed_transfer.detection.tv.train import build_model, build_optimizer, lr_factor

REPO = Path(__file__).parents[3]
C4 = REPO / "configs/det/trees_R_18_C4_demo.yaml"
# Tiny and fast: 2 iterations, few regions (res5 runs on each), small images. Not a meaningful AP.
FAST = [
    "SOLVER.MAX_ITER",
    "2",
    "SOLVER.STEPS",
    "(1,)",
    "SOLVER.WARMUP_ITERS",
    "1",
    "SOLVER.IMS_PER_BATCH",
    "2",
    "SOLVER.CHECKPOINT_PERIOD",
    "1",
    "MODEL.RPN.PRE_NMS_TOPK_TEST",
    "50",
    "MODEL.RPN.POST_NMS_TOPK_TEST",
    "4",
    "MODEL.RPN.POST_NMS_TOPK_TRAIN",
    "16",
    "MODEL.ROI_HEADS.BATCH_SIZE_PER_IMAGE",
    "8",
    "INPUT.MIN_SIZE_TEST",
    "64",
    "INPUT.MIN_SIZE_TRAIN",
    "(64,)",
]


def test_lr_schedule_matches_detectron2():
    pytest.importorskip("detectron2")
    from detectron2.config import get_cfg
    from detectron2.solver import build_lr_scheduler

    opts = ["SOLVER.MAX_ITER", "40", "SOLVER.STEPS", "(20, 30)", "SOLVER.WARMUP_ITERS", "10", "SOLVER.BASE_LR", "0.02"]
    d2_cfg = get_cfg()
    d2_cfg.merge_from_list(opts)
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.02)
    scheduler = build_lr_scheduler(d2_cfg, optimizer)
    solver = load_config(C4, opts).SOLVER
    for iteration in range(40):
        assert 0.02 * lr_factor(iteration, solver) == pytest.approx(optimizer.param_groups[0]["lr"], rel=1e-6), (
            iteration
        )
        optimizer.step()
        scheduler.step()


def test_no_weight_decay_on_norm_layers():
    cfg = load_run_config(make_plan(DetRequest(C4, "random", ".", engine="torchvision")))
    model, _ = build_model(cfg, "random")
    optimizer = build_optimizer(cfg, model)
    decay = {id(p): g["weight_decay"] for g in optimizer.param_groups for p in g["params"]}
    assert decay[id(model.backbone.body.bn1.weight)] == 0.0 and decay[id(model.backbone.body.conv1.weight)] == 1e-4
    assert decay[id(model.roi_heads.box_predictor.cls_score.bias)] == 1e-4
    assert len(decay) == sum(p.requires_grad for p in model.parameters())


def test_batches_depend_only_on_seed_and_iteration():
    full = list(IterationBatches(10, 2, seed=3, start=0, max_iter=12))
    resumed = list(IterationBatches(10, 2, seed=3, start=7, max_iter=12))
    assert resumed == full[7:]
    assert sorted(i for batch in full[:5] for i, _ in batch) == list(range(10))  # one pass sees every image once
    ranks = [list(IterationBatches(10, 1, 3, 0, 5, rank=r, world_size=2)) for r in range(2)]
    assert [a + b for a, b in zip(*ranks)] == full[:5]  # two processes share the same global stream


def _not_json(constant):
    raise ValueError(f"{constant} is not JSON (jq refuses it)")


def test_a_few_iterations_on_the_tree_tiles_write_metrics(tmp_path):
    out = tmp_path / "out"
    summary = run_detection_transfer(
        str(C4), "random", out, seeds=1, engine="torchvision", data_root=str(tmp_path / "datasets"), opts=FAST
    )
    metrics = json.loads((out / "seed0" / "metrics.json").read_text(), parse_constant=_not_json)
    assert set(metrics["results"]["bbox"]) >= {"AP", "AP50", "AP75", "APs", "APm", "APl", "AP-Tree"}
    assert metrics["results"]["bbox"]["APl"] is None  # undefined (no large tree in 200 px tiles): null, not NaN
    json.loads((out / "summary.json").read_text(), parse_constant=_not_json)
    assert metrics["schedule"]["effective"] == {
        "ims_per_batch": 2,
        "base_lr": 0.02,
        "max_iter": 2,
        "steps": [1],
        "warmup_iters": 1,
    }
    assert metrics["schedule"]["norm"] == "BN" and metrics["schedule"]["amp"] is False
    assert list(metrics) == ["engine", "seed", "init", "schedule", "results"]  # the one schema, as Detectron2's
    assert metrics["engine"] == "torchvision" and metrics["seed"] == 0 and metrics["init"] == summary["init"]
    assert summary["engine"] == "torchvision" and summary["init"]["arch"] == "resnet18"
    assert set(summary["summary"]["bbox"]["AP"]) == {"mean", "std", "values"}
    lines = (out / "seed0" / "train_log.jsonl").read_text().splitlines()
    log = [json.loads(line, parse_constant=_not_json) for line in lines]
    assert [row["iteration"] for row in log] == [1, 2] and log[0]["lr"] == pytest.approx(0.02 * 0.001)
    assert all(row["total_loss"] > 0 for row in log)
    checkpoint = torch.load(out / "seed0" / "checkpoint.pth", weights_only=True)
    assert checkpoint["step"] == 2  # seed_core.runtime's checkpoint format
    # resuming a finished run evaluates again without training
    (out / "seed0" / "metrics.json").unlink()
    run_detection_transfer(
        str(C4),
        "random",
        out,
        seeds=1,
        engine="torchvision",
        data_root=str(tmp_path / "datasets"),
        opts=FAST,
        resume=True,
    )
    assert len((out / "seed0" / "train_log.jsonl").read_text().splitlines()) == 2
    assert json.loads((out / "seed0" / "metrics.json").read_text())["results"]["bbox"] == metrics["results"]["bbox"]

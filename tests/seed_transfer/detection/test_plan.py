"""The one fine-tuning plan of both detection engines: the same plan from the same config, the
matched-schedule rule, the norm rule, and every check a one-line user error naming its key."""

import json
from pathlib import Path

import pytest

from seed_core.errors import UserError
from seed_transfer.detection.plan import DetRequest, make_plan
from seed_transfer.detection.schedule import Schedule
from seed_transfer.detection.tv.config import load_run_config

REPO = Path(__file__).parents[3]
VOC = REPO / "configs/det/voc_R_50_C4_24k.yaml"
FPN = REPO / "configs/det/coco_R_50_FPN_1x.yaml"
DEMO = REPO / "configs/det/trees_R_18_C4_demo.yaml"
SOLVER_KEYS = ("IMS_PER_BATCH", "BASE_LR", "MAX_ITER", "STEPS", "WARMUP_ITERS")


def _request(config=VOC, **kwargs):
    return DetRequest(config, kwargs.pop("weights", "random"), "/nonexistent/out", **kwargs)


def test_the_matched_schedule_rule_scales_lr_with_the_batch_and_iterations_inversely():
    plan = make_plan(_request(engine="torchvision", ims_per_batch=8))
    assert plan.reference == Schedule(16, 0.02, 24000, (18000, 22000), 100)  # the paper's protocol
    assert plan.effective == Schedule(8, 0.01, 48000, (36000, 44000), 200)
    assert make_plan(_request(engine="torchvision")).effective == plan.reference  # no ims_per_batch: as configured
    cfg = load_run_config(plan)
    assert [cfg.SOLVER[k] for k in SOLVER_KEYS] == [8, 0.01, 48000, [36000, 44000], 200]
    entry = plan.schedule_entry()
    assert entry["effective"] == {
        "ims_per_batch": 8,
        "base_lr": 0.01,
        "max_iter": 48000,
        "steps": [36000, 44000],
        "warmup_iters": 200,
    }
    assert entry["reference"]["max_iter"] == 24000 and entry["norm"] == "BN" and entry["amp"] is False


def test_sync_norms_run_as_bn_in_one_process_and_stay_synchronised_across_gpus():
    single = make_plan(_request(FPN, engine="torchvision"))
    assert dict(single.norms) == {"RESNETS": "BN", "FPN": "BN", "ROI_BOX_HEAD": "BN", "ROI_MASK_HEAD": "BN"}
    assert (single.device, single.world_size, single.amp) == ("cpu", 1, False)
    eight = make_plan(_request(VOC, engine="torchvision", num_gpus=8))  # planning touches no GPU
    assert (eight.device, eight.world_size, eight.amp) == ("cuda", 8, True)
    assert dict(eight.norms)["RESNETS"] == "naiveSyncBN"  # MoCo's protocol, kept across processes
    assert load_run_config(eight).MODEL.RESNETS.NORM == "naiveSyncBN"


def test_torchrun_sets_the_torchvision_engines_processes(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "4")
    assert make_plan(_request(engine="torchvision", num_gpus=1)).world_size == 4
    with pytest.raises(UserError, match="SOLVER.IMS_PER_BATCH=2 must be a multiple of the 4 processes"):
        make_plan(_request(engine="torchvision", num_gpus=1, ims_per_batch=2))


@pytest.mark.parametrize("config", [VOC, FPN, DEMO], ids=lambda p: p.name)
def test_both_engines_get_the_same_plan_and_train_with_the_same_values(config, tmp_path):
    pytest.importorskip("detectron2")
    from seed_transfer.detection.d2.train_net import build_cfg

    plans = {
        engine: make_plan(_request(config, engine=engine, ims_per_batch=2)) for engine in ("detectron2", "torchvision")
    }
    d2, tv = plans["detectron2"], plans["torchvision"]
    assert (d2.device, d2.world_size, d2.norms, d2.reference, d2.effective) == (
        tv.device,
        tv.world_size,
        tv.norms,
        tv.reference,
        tv.effective,
    )
    assert d2.schedule_entry() == tv.schedule_entry()
    d2_cfg, tv_cfg = build_cfg(d2, 0, tmp_path, None), load_run_config(tv)
    for key in SOLVER_KEYS:
        d2_value = list(d2_cfg.SOLVER[key]) if key == "STEPS" else d2_cfg.SOLVER[key]  # Detectron2 keeps tuples
        assert d2_value == tv_cfg.SOLVER[key], key
    assert d2_cfg.SOLVER.AMP.ENABLED == tv_cfg.SOLVER.AMP.ENABLED is False
    for section, _ in d2.norms:
        assert d2_cfg.MODEL[section].NORM == tv_cfg.MODEL[section].NORM, section


@pytest.mark.parametrize(
    "request_kwargs, key",
    [
        ({"seeds": 0}, "seeds"),
        ({"num_gpus": -1}, "num_gpus"),
        ({"engine": "mmdet"}, "engine"),
        ({"weights": "backbone_d2.pkl", "engine": "torchvision"}, "weights"),
        ({"ims_per_batch": 0}, "ims_per_batch"),
        ({"opts": ["MODEL.RPN.NMS_THRES", "0.5"]}, "MODEL.RPN.NMS_THRES"),
        ({"opts": ["SOLVER.MAX_ITER", "many"]}, "SOLVER.MAX_ITER"),
        ({"opts": ["SOLVER.MAX_ITER", "1", "SOLVER.STEPS", "()"]}, "SOLVER.MAX_ITER=1 must be >= 2"),
        ({"opts": ["SOLVER.STEPS", "(300,)"]}, r"SOLVER.STEPS [300] must lie inside (0, SOLVER.MAX_ITER=250)"),
        ({"opts": ["SOLVER.STEPS", "(0, 200)"]}, "SOLVER.STEPS [0, 200] must lie inside"),
        ({"ims_per_batch": 1000}, "SOLVER.MAX_ITER=1 must be >= 2"),  # 250 iterations at 4 images, scaled
        ({"num_gpus": 3}, "SOLVER.IMS_PER_BATCH=4 must be a multiple of the 3 processes"),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_every_check_is_a_one_line_user_error_naming_its_key(request_kwargs, key):
    engine = request_kwargs.pop("engine", "torchvision")
    with pytest.raises(UserError) as caught:
        make_plan(_request(DEMO, engine=engine, **request_kwargs))
    message = str(caught.value)
    assert key in message and "\n" not in message
    assert isinstance(caught.value, ValueError)  # callers that catch ValueError keep working


def test_a_scaled_schedule_says_so_in_its_error():
    with pytest.raises(UserError, match=r"scaled to ims_per_batch=1000\): SOLVER.MAX_ITER=1 must be >= 2"):
        make_plan(_request(DEMO, engine="torchvision", ims_per_batch=1000))


def test_the_plan_is_frozen_and_one_metrics_schema_serves_both_engines(tmp_path):
    from seed_transfer.finetune import write_json

    plan = make_plan(_request(DEMO, engine="torchvision"))
    with pytest.raises(AttributeError):
        plan.effective = plan.reference
    metrics = plan.seed_metrics(1, {"init": "random"}, {"bbox": {"AP": 1.5, "APl": float("nan")}})
    assert list(metrics) == ["engine", "seed", "init", "schedule", "results"]
    assert metrics["engine"] == "torchvision" and metrics["seed"] == 1 and metrics["schedule"] == plan.schedule_entry()
    write_json(metrics, tmp_path / "metrics.json")
    read = json.loads((tmp_path / "metrics.json").read_text(), parse_constant=lambda c: pytest.fail(f"{c} in JSON"))
    assert read["results"]["bbox"] == {"AP": 1.5, "APl": None}


@pytest.mark.parametrize(
    "opts, message",
    [
        (
            ("SOLVER.LR_SCHEDULER_NAME", "WarmupPolyLR"),
            "SOLVER.LR_SCHEDULER_NAME 'WarmupPolyLR': the torchvision engine",
        ),
        (("SOLVER.WARMUP_METHOD", "exp"), "SOLVER.WARMUP_METHOD 'exp': use linear or constant"),
        (("INPUT.RANDOM_FLIP", "vertical"), "INPUT.RANDOM_FLIP 'vertical': the torchvision engine has horizontal"),
    ],
)
def test_the_torchvision_engines_config_checks_come_with_the_plan(opts, message):
    """Before anything runs (a comparison stops at once, not after hours of distillation)."""
    with pytest.raises(UserError, match=message):
        make_plan(_request(engine="torchvision", opts=opts))

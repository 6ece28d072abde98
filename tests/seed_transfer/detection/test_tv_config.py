"""The torchvision engine reads Detectron2 configs as Detectron2 does and sets Detectron2's values."""

import logging
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from distill.models import build_backbone
from seed_transfer.detection import plan
from seed_transfer.detection.plan import DetRequest, make_plan
from seed_transfer.detection.tv.config import load_config, load_run_config
from seed_transfer.detection.tv.models import build_detector
from seed_transfer.detection.tv.transform import pixel_stats

REPO = Path(__file__).parents[3]
CONFIGS = sorted((REPO / "configs/det").glob("*.yaml"))


def _plain(value):
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


@pytest.mark.parametrize("config", CONFIGS, ids=lambda p: p.name)
def test_every_config_resolves_to_detectron2s_values(config):
    get_cfg = pytest.importorskip("detectron2.config").get_cfg
    from seed_transfer.detection.d2.heads import register_heads

    register_heads()
    opts = ["SOLVER.MAX_ITER", "300", "MODEL.RPN.NMS_THRESH", "0.6"]
    reference = get_cfg()
    reference.merge_from_file(str(config))
    reference.merge_from_list(opts)
    assert _plain(load_config(config, opts).to_dict()) == _plain(dict(reference))


def test_base_chain_defaults_and_overrides():
    cfg = load_config(
        REPO / "configs/det/trees_R_18_C4_demo.yaml", ["SOLVER.BASE_LR", "1", "INPUT.MIN_SIZE_TRAIN", "(96, 128)"]
    )
    assert cfg.MODEL.RESNETS.STRIDE_IN_1X1 is False  # from Base-RCNN-C4-BN.yaml
    assert cfg.MODEL.RESNETS.DEPTH == 18 and cfg.INPUT.MIN_SIZE_TEST == 200  # from the file
    assert cfg.MODEL.RPN.NMS_THRESH == 0.7 and cfg.SOLVER.GAMMA == 0.1  # Detectron2 defaults
    assert cfg.SOLVER.BASE_LR == 1.0 and cfg.INPUT.MIN_SIZE_TRAIN == [96, 128]


def test_bad_config_keys_and_values_are_named(tmp_path):
    config = REPO / "configs/det/trees_R_18_C4_demo.yaml"
    with pytest.raises(
        ValueError, match=r"MODEL.RPN.NMS_THRES is not a Detectron2 config key; did you mean \['MODEL.RPN.NMS_THRESH'"
    ):
        load_config(config, ["MODEL.RPN.NMS_THRES", "0.5"])
    with pytest.raises(ValueError, match="SOLVER.MAX_ITER must be a int"):
        load_config(config, ["SOLVER.MAX_ITER", "many"])
    with pytest.raises(ValueError, match="KEY VALUE pairs"):
        load_config(config, ["SOLVER.MAX_ITER"])
    (tmp_path / "bad.yaml").write_text('_BASE_: "missing.yaml"\n')
    with pytest.raises(FileNotFoundError, match="missing.yaml"):
        load_config(tmp_path / "bad.yaml")
    (tmp_path / "typo.yaml").write_text("MODEL:\n  RESNET:\n    DEPTH: 18\n")
    with pytest.raises(ValueError, match=r"typo.yaml: MODEL.RESNET is not a Detectron2 config key"):
        load_config(tmp_path / "typo.yaml")


def test_a_duplicated_key_or_a_syntax_error_in_a_detection_config_names_the_file_and_lines(tmp_path):
    """Detectron2's own reader keeps the last of two values silently; the plan reads the file first."""
    base = REPO / "configs/det/trees_R_18_C4_demo.yaml"
    twice = tmp_path / "twice.yaml"
    twice.write_text(f"_BASE_: {base}\nSOLVER:\n  MAX_ITER: 100\n  BASE_LR: 0.01\n  MAX_ITER: 200\n")
    with pytest.raises(ValueError, match=f"{twice}: key 'MAX_ITER' is given twice in one mapping, at lines 3 and 5"):
        make_plan(DetRequest(twice, "random", tmp_path / "out", engine="torchvision"))
    broken = tmp_path / "broken.yaml"
    broken.write_text(f"_BASE_: {base}\nSOLVER:\n  STEPS: (300,\n  MAX_ITER: [1\n")
    with pytest.raises(ValueError, match=f"{broken}, line 5: YAML syntax error"):
        load_config(broken)


def test_model_takes_detectron2_values_where_torchvision_differs():
    plan = make_plan(
        DetRequest(
            REPO / "configs/det/trees_R_50_FPN_demo.yaml",
            "random",
            ".",
            opts=["MODEL.MASK_ON", "True"],
            engine="torchvision",
        )
    )
    cfg = load_run_config(plan)
    assert plan.schedule_entry()["norm"] == "BN"  # SyncBN -> BN in one CPU process, as the Detectron2 engine
    model = build_detector(cfg, build_backbone("resnet18")[0])
    rpn, roi = model.rpn, model.roi_heads
    assert rpn.box_coder.weights == (1.0, 1.0, 1.0, 1.0) and roi.box_coder.weights == (10.0, 10.0, 5.0, 5.0)
    assert rpn._pre_nms_top_n == {"training": 2000, "testing": 1000}
    assert rpn._post_nms_top_n == {"training": 1000, "testing": 1000} and rpn.nms_thresh == 0.7
    assert rpn.fg_bg_sampler.batch_size_per_image == 256 and rpn.fg_bg_sampler.positive_fraction == 0.5
    assert roi.fg_bg_sampler.batch_size_per_image == 512 and roi.fg_bg_sampler.positive_fraction == 0.25
    assert (roi.score_thresh, roi.nms_thresh, roi.detections_per_img) == (0.05, 0.5, 200)
    assert rpn.smooth_l1_beta == 0.0 and roi.smooth_l1_beta == 0.0
    assert rpn.anchor_generator.sizes == ((16,), (32,), (64,), (128,), (256,))
    cell = rpn.anchor_generator.generate_anchors([16], [0.5, 1.0, 2.0])
    assert torch.allclose(cell[0], torch.tensor([-11.3137, -5.6569, 11.3137, 5.6569]), atol=1e-4)  # not rounded
    assert roi.box_roi_pool.aligned and roi.box_roi_pool.output_size == 7 and roi.mask_roi_pool.output_size == 14
    assert list(model.transform.min_size) == [200] and model.transform.min_size_test == 200
    assert model.transform.size_divisible == 32
    assert torch.allclose(torch.tensor(model.transform.image_mean), torch.tensor([0.485, 0.456, 0.406]))
    assert list(roi.box_predictor.cls_score.bias) == [0.0, 0.0]


def test_bgr_pixel_statistics_are_reordered_for_rgb_images():
    cfg = load_config(
        REPO / "configs/det/trees_R_18_C4_demo.yaml",
        [
            "INPUT.FORMAT",
            "BGR",
            "MODEL.PIXEL_MEAN",
            "[103.53, 116.28, 123.675]",
            "MODEL.PIXEL_STD",
            "[57.375, 57.12, 58.395]",
        ],
    )
    mean, std = pixel_stats(cfg)
    assert mean == pytest.approx([0.485, 0.456, 0.406], abs=1e-4) and std == pytest.approx(
        [0.229, 0.224, 0.225], abs=1e-4
    )


def test_engine_choice_and_errors(monkeypatch, caplog):
    with pytest.raises(ValueError, match="engine: unknown engine 'mmdet'; choose one of auto, detectron2, torchvision"):
        plan.resolve_engine("mmdet")
    assert plan.resolve_engine("torchvision") == "torchvision"
    installed = plan.importlib.util.find_spec("detectron2") is not None
    with caplog.at_level(logging.INFO, logger="seed_transfer.detection.plan"):
        assert plan.resolve_engine("auto") == ("detectron2" if installed else "torchvision")
    assert f"detection engine: {'detectron2' if installed else 'torchvision'}" in caplog.text
    caplog.clear()
    real_find_spec = plan.importlib.util.find_spec
    monkeypatch.setattr(
        plan.importlib.util, "find_spec", lambda name, *a: None if name == "detectron2" else real_find_spec(name, *a)
    )
    with caplog.at_level(logging.INFO, logger="seed_transfer.detection.plan"):
        assert plan.resolve_engine("auto") == "torchvision"
    assert "detection engine: torchvision" in caplog.text and "not installed" in caplog.text
    with pytest.raises(ImportError, match="--engine torchvision"):
        plan.resolve_engine("detectron2")


def test_cli_refuses_an_unknown_engine_and_a_c4_mobilenet(tmp_path):
    cmd = [
        sys.executable,
        str(REPO / "tools/transfer_det.py"),
        "--config",
        str(REPO / "configs/det/trees_R_18_C4_demo.yaml"),
        "--engine",
        "mmdet",
    ]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "invalid choice: 'mmdet'" in result.stderr
    cfg = load_config(REPO / "configs/det/trees_R_18_C4_demo.yaml")
    with pytest.raises(ValueError, match="C4 layout .* needs a torchvision ResNet, got MobileNetV3: use an FPN config"):
        build_detector(cfg, build_backbone("mobilenet_v3_large")[0])

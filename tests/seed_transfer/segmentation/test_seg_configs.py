"""configs/seg: the zoo's numbers, the scaling rule, and the MMEngine configs they build."""

from pathlib import Path

import pytest

from seed_core.config import ConfigError, load_config
from seed_transfer.segmentation.mmconfig import build_mmengine_config, scaled_schedule
from seed_transfer.segmentation.schema import SegScheduleConfig, SegTransferConfig

CONFIGS = Path(__file__).resolve().parents[3] / "configs" / "seg"
ZOO = {  # file -> (dataset, crop H x W, iterations, reference batch, head)
    "fcn-d8_voc12aug-512x512_20k": ("voc12aug", [512, 512], 20000, 16, "fcn"),
    "fcn-d8_voc12aug-512x512_40k": ("voc12aug", [512, 512], 40000, 16, "fcn"),
    "deeplabv3-d8_voc12aug-512x512_20k": ("voc12aug", [512, 512], 20000, 16, "deeplabv3"),
    "deeplabv3-d8_voc12aug-512x512_40k": ("voc12aug", [512, 512], 40000, 16, "deeplabv3"),
    "fcn-d8_cityscapes-512x1024_40k": ("cityscapes", [512, 1024], 40000, 8, "fcn"),
    "fcn-d8_cityscapes-512x1024_80k": ("cityscapes", [512, 1024], 80000, 8, "fcn"),
    "deeplabv3-d8_cityscapes-512x1024_40k": ("cityscapes", [512, 1024], 40000, 8, "deeplabv3"),
    "deeplabv3-d8_cityscapes-512x1024_80k": ("cityscapes", [512, 1024], 80000, 8, "deeplabv3"),
}


@pytest.mark.parametrize("name", sorted(ZOO))
def test_zoo_configs(name):
    cfg = load_config(SegTransferConfig, CONFIGS / f"{name}.yaml")
    dataset, crop, iters, batch, head = ZOO[name]
    assert (cfg.data.dataset, cfg.data.crop_size, cfg.schedule.iters, cfg.schedule.reference_batch, cfg.model.head) == (
        dataset,
        crop,
        iters,
        batch,
        head,
    )
    assert cfg.schedule.lr == 0.01 and cfg.model.depth is None and cfg.model.norm == "SyncBN"
    assert cfg.data.batch_size * 4 == batch  # the zoo's 4 GPUs


def test_scaling_rule():
    zoo = SegScheduleConfig(iters=20000, lr=0.01, reference_batch=16, val_interval=2000, checkpoint_interval=2000)
    assert scaled_schedule(zoo, 16)["rule"] == "reference"
    one_gpu = scaled_schedule(zoo, 4)  # 1 GPU x 4 images
    assert (one_gpu["lr"], one_gpu["iters"], one_gpu["val_interval"]) == (0.0025, 80000, 8000)
    zoo.scaling = "accumulate"
    accumulated = scaled_schedule(zoo, 4)
    assert (accumulated["lr"], accumulated["accumulate"], accumulated["iters"]) == (0.01, 4, 80000)
    with pytest.raises(ValueError, match="divide"):
        scaled_schedule(zoo, 3)


def test_mmengine_config_builds_the_model():
    from seed_transfer.segmentation.mmseg_setup import import_mmseg

    import_mmseg()
    from mmengine.registry import DefaultScope
    from mmseg.registry import MODELS

    cfg = load_config(SegTransferConfig, CONFIGS / "deeplabv3-d8_voc12aug-512x512_20k.yaml", ["data.batch_size=2"])
    data = {
        "train": [{"type": "PascalVOCDataset"}],
        "val": {"type": "PascalVOCDataset"},
        "num_classes": 21,
        "label_transforms": [],
    }
    mm, schedule = build_mmengine_config(cfg, data, depth=18, backbone_file=None, work_dir="w", seed=0)
    assert schedule["rule"] == "linear x0.125" and mm["train_cfg"]["max_iters"] == 160000
    backbone = mm["model"]["backbone"]
    assert backbone["type"] == "ResNet" and backbone["dilations"] == (1, 1, 2, 4)  # plain stem, D8
    with DefaultScope.overwrite_default_scope("mmseg"):
        model = MODELS.build(mm["model"])
    assert model.decode_head.in_channels == 512 and model.auxiliary_head.num_classes == 21


def test_bad_config_values_are_named():
    with pytest.raises(ConfigError, match="model.head: 'pspnet'"):
        load_config(SegTransferConfig, CONFIGS / "fcn-d8_voc12aug-512x512_20k.yaml", ["model.head=pspnet"])
    with pytest.raises(ConfigError, match="data.crop_size"):
        load_config(SegTransferConfig, None, ["data.crop_size=[512]"])

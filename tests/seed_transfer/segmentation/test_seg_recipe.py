"""The recipe's numbers are config keys: stated in configs/seg/base, each reaching exactly its
place in the MMEngine dict, and bad values refused with a ConfigError naming the key."""

import dataclasses
import re
from pathlib import Path

import pytest
import yaml

from seed_core.config import ConfigError, load_config
from seed_transfer.segmentation.mmconfig import build_mmengine_config
from seed_transfer.segmentation.schema import SegDataConfig, SegModelConfig, SegTransferConfig

CONFIGS = Path(__file__).resolve().parents[3] / "configs" / "seg"
FCN = "fcn-d8_voc12aug-512x512_20k"
ASPP = "deeplabv3-d8_cityscapes-512x1024_40k"
DATA = {
    "train": [{"type": "PascalVOCDataset"}],
    "val": {"type": "PascalVOCDataset"},
    "num_classes": 21,
    "label_transforms": [],
}


def _mm(name: str, overrides=(), depth: int = 50) -> dict:
    cfg = load_config(SegTransferConfig, CONFIGS / f"{name}.yaml", list(overrides))
    return build_mmengine_config(cfg, DATA, depth=depth, backbone_file=None, work_dir="w", seed=0)[0]


def _diff(a, b, path: str = "") -> dict:
    """{path: (a's value, b's value)} wherever two nested configs differ (in value or in type)."""
    if type(a) is not type(b):
        return {path: (a, b)}
    if isinstance(a, dict):
        out = {}
        for key in [*a, *(k for k in b if k not in a)]:
            out.update(_diff(a.get(key), b.get(key), f"{path}.{key}".lstrip(".")))
        return out
    if isinstance(a, (list, tuple)) and any(isinstance(x, dict) for x in [*a, *b]):  # pipelines: item by item
        if len(a) != len(b):
            return {path: (a, b)}
        out = {}
        for i, (x, y) in enumerate(zip(a, b)):
            out.update(_diff(x, y, f"{path}[{i}]"))
        return out
    if isinstance(a, (list, tuple)):  # numbers: one value, e.g. a tuple of dilations
        return {} if a == b and list(map(type, a)) == list(map(type, b)) else {path: (a, b)}
    return {} if a == b else {path: (a, b)}


TRAIN = "train_dataloader.dataset.pipeline"
CASES = [  # (preset, overrides, {path in the MMEngine dict: new value}); nothing else may change
    (FCN, ["model.dropout_ratio=0.2"], {"model.decode_head.dropout_ratio": 0.2}),
    (FCN, ["data.cat_max_ratio=1.0"], {f"{TRAIN}[3].cat_max_ratio": 1.0}),
    (FCN, ["data.flip_prob=0"], {f"{TRAIN}[4].prob": 0.0}),
    (FCN, ["model.channels=256"], {"model.decode_head.channels": 256}),
    (FCN, ["model.aux_channels=128"], {"model.auxiliary_head.channels": 128}),
    (FCN, ["model.aux_loss_weight=1"], {"model.auxiliary_head.loss_decode.loss_weight": 1.0}),
    (FCN, ["model.aux_dropout_ratio=0"], {"model.auxiliary_head.dropout_ratio": 0.0}),
    (FCN, ["model.loss_weight=2"], {"model.decode_head.loss_decode.loss_weight": 2.0}),
    (FCN, ["model.fcn_num_convs=1"], {"model.decode_head.num_convs": 1}),
    (FCN, ["model.fcn_concat_input=false"], {"model.decode_head.concat_input": False}),
    (FCN, ["model.aux_num_convs=2"], {"model.auxiliary_head.num_convs": 2}),
    # the head's in_channels follow its stage
    (FCN, ["model.in_index=2"], {"model.decode_head.in_index": 2, "model.decode_head.in_channels": 1024}),
    (FCN, ["model.aux_in_index=1"], {"model.auxiliary_head.in_index": 1, "model.auxiliary_head.in_channels": 512}),
    (ASPP, ["model.aspp_dilations=[1,6,12,18]"], {"model.decode_head.dilations": (1, 6, 12, 18)}),
    (
        ASPP,
        ["model.strides=[1,2,2,1]", "model.dilations=[1,1,1,2]"],  # D16
        {"model.backbone.strides": (1, 2, 2, 1), "model.backbone.dilations": (1, 1, 1, 2)},
    ),
]


@pytest.mark.parametrize(("name", "overrides", "changed"), CASES, ids=[" ".join(c[1]) for c in CASES])
def test_recipe_keys_reach_the_mmengine_dict(name, overrides, changed):
    diff = _diff(_mm(name), _mm(name, overrides))
    assert {path: new for path, (_, new) in diff.items()} == changed
    assert all(type(diff[p][1]) is type(v) for p, v in changed.items())  # float stays float, tuple tuple


def test_slide_window():
    base = ["model.test_mode=slide"]
    assert _mm(ASPP, base)["model"]["test_cfg"] == dict(mode="slide", crop_size=(512, 1024), stride=(341, 682))
    diff = _diff(_mm(ASPP, base), _mm(ASPP, [*base, "model.slide_stride=[256,512]"]))
    assert {p: new for p, (_, new) in diff.items()} == {"model.test_cfg.stride": (256, 512)}


@pytest.mark.parametrize(
    ("depth", "widths", "in_channels"),
    [
        (18, (128, 64), (512, 256)),
        (34, (128, 64), (512, 256)),
        (50, (512, 256), (2048, 1024)),
        (101, (512, 256), (2048, 1024)),
    ],
)
def test_null_width_is_the_depths_zoo_width(depth, widths, in_channels):
    model = _mm(FCN, depth=depth)["model"]
    decode, aux = model["decode_head"], model["auxiliary_head"]
    assert (decode["channels"], aux["channels"]) == widths
    assert (decode["in_channels"], aux["in_channels"]) == in_channels
    model = _mm(FCN, ["model.channels=96", "model.aux_channels=32"], depth=depth)["model"]  # explicit: every depth
    assert (model["decode_head"]["channels"], model["auxiliary_head"]["channels"]) == (96, 32)


def _base(name: str) -> dict:
    return yaml.safe_load((CONFIGS / "base" / name).read_text())


@pytest.mark.parametrize(
    ("base", "other_heads_keys"),
    [("fcn-d8.yaml", {"aspp_dilations"}), ("deeplabv3-d8.yaml", {"fcn_num_convs", "fcn_concat_input"})],
)
def test_model_bases_state_the_whole_recipe(base, other_heads_keys):
    """Every model key but the depth (the checkpoint's) and the other head's is in the base file,
    with the schema default as its value: the YAML is the recipe, the defaults only mirror it."""
    stated = _base(base)["model"]
    keys = {f.name for f in dataclasses.fields(SegModelConfig)} - {"depth"} - other_heads_keys
    assert set(stated) == keys
    defaults = dataclasses.asdict(SegModelConfig())
    assert {k: v for k, v in stated.items() if k != "head"} == {k: defaults[k] for k in keys if k != "head"}


@pytest.mark.parametrize("base", ["voc12aug-512x512.yaml", "cityscapes-512x1024.yaml"])
def test_dataset_bases_state_the_augmentation(base):
    stated = _base(base)["data"]
    assert set(stated) == {f.name for f in dataclasses.fields(SegDataConfig)} - {"root"}
    assert (stated["cat_max_ratio"], stated["flip_prob"], stated["photometric"]) == (0.75, 0.5, True)


BAD = [  # (override, the start of the one-line message: the key and what it allows)
    ("model.dropout_ratio=1.5", "model.dropout_ratio must be in [0, 1)"),
    ("model.aux_dropout_ratio=-0.1", "model.aux_dropout_ratio must be in [0, 1)"),
    ("data.cat_max_ratio=0", "data.cat_max_ratio must be in (0, 1]"),
    ("data.flip_prob=2", "data.flip_prob must be in [0, 1]"),
    ("model.in_index=4", "model.in_index must be in [0, 3], got 4"),
    ("model.aux_in_index=-1", "model.aux_in_index must be in [0, 3], got -1"),
    ("model.strides=[1,2,1]", "model.strides: expected four integers >= 1"),
    ("model.dilations=[1,1,0,4]", "model.dilations must be at least 1, got [1, 1, 0, 4]"),
    ("model.channels=0", "model.channels must be at least 1 (or null), got 0"),
    ("model.aux_channels=-8", "model.aux_channels must be at least 1 (or null), got -8"),
    ("model.fcn_num_convs=0", "model.fcn_num_convs must be at least 1, got 0"),
    ("model.aux_num_convs=0", "model.aux_num_convs must be at least 1, got 0"),
    ("model.aux_loss_weight=-1", "model.aux_loss_weight must be at least 0, got -1.0"),
    ("model.loss_weight=-0.5", "model.loss_weight must be at least 0, got -0.5"),
    ("model.aspp_dilations=[]", "model.aspp_dilations: expected one or more integers >= 1"),
    ("model.slide_stride=[600,600]", "model.slide_stride: expected null or [H, W] in [1, data.crop_size"),
    ("model.slide_stride=[100]", "model.slide_stride: expected null or"),
    ("model.channels=wide", "model.channels: expected int"),  # the type check names the key too
]


@pytest.mark.parametrize(("override", "message"), BAD, ids=[b[0] for b in BAD])
def test_bad_recipe_values_are_named(override, message):
    with pytest.raises(ConfigError, match=re.escape(message)) as err:
        load_config(SegTransferConfig, CONFIGS / f"{FCN}.yaml", [override])
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("name", [FCN, ASPP])
def test_changed_recipe_builds_and_runs(name):
    """A non-zoo recipe (heads on other stages, narrower, D16) is a model mmseg builds and runs:
    the heads' in_channels follow the stages they read."""
    import torch

    from seed_transfer.segmentation.mmseg_setup import import_mmseg

    import_mmseg()
    from mmengine.registry import DefaultScope
    from mmseg.registry import MODELS

    mm = _mm(
        name,
        [
            "model.norm=BN",
            "model.in_index=2",
            "model.aux_in_index=1",
            "model.channels=16",
            "model.aux_channels=8",
            "model.fcn_num_convs=1",
            "model.aspp_dilations=[1,2]",
            "model.strides=[1,2,2,1]",
            "model.dilations=[1,1,1,2]",
        ],
        depth=18,
    )
    with DefaultScope.overwrite_default_scope("mmseg"):
        model = MODELS.build(mm["model"]).eval()
    with torch.no_grad():
        features = model.extract_feat(torch.zeros(1, 3, 64, 64))
        logits = model.decode_head(features)
        aux_logits = model.auxiliary_head(features)
    assert features[2].shape[1] == model.decode_head.in_channels == 256
    assert logits.shape == (1, 21, 4, 4) and aux_logits.shape == (1, 21, 8, 8)  # D16: stage 3 at 1/16

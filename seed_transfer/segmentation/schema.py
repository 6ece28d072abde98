"""Typed schema of the segmentation transfer configs (``configs/seg/*.yaml``).

The YAML files hold the MMSegmentation model-zoo protocol as data (model, dataset, crop,
schedule); :mod:`seed_transfer.segmentation.mmconfig` turns one into an MMEngine config.
Override any key as ``key=value`` (``schedule.iters=100``, ``data.root=/datasets``).
"""

from dataclasses import dataclass, field

from distill.config import ConfigError

HEADS = ("fcn", "deeplabv3")
NORMS = ("SyncBN", "BN")
DATASETS = ("voc12", "voc12aug", "cityscapes", "voc_example")
SCALINGS = ("linear", "accumulate")


@dataclass
class SegModelConfig:
    head: str = "fcn"  # fcn (FCNHead, 2 convs) | deeplabv3 (ASPP, rates 1/12/24/36); both D8 (output stride 8)
    # ResNet depth; None takes the checkpoint's (a random init needs it: model.depth=50).
    depth: int | None = None
    # SyncBN as in the model zoo; a single process (1 GPU, CPU) runs it as BN (MMEngine reverts it).
    norm: str = "SyncBN"
    aux_head: bool = True  # FCN auxiliary head on stage 3 (loss weight 0.4), as the zoo configs
    # FCN-D8 / DeepLabV3-D8 inference: whole image (zoo) or sliding window (crop-sized windows)
    test_mode: str = "whole"


@dataclass
class SegDataConfig:
    dataset: str = "voc12aug"  # voc12 | voc12aug (VOC train + SBD aug when present) | cityscapes | voc_example
    root: str | None = None  # folder holding VOCdevkit/ or cityscapes/ (default: ./datasets)
    crop_size: list[int] = field(default_factory=lambda: [512, 512])  # H, W of the training crops
    # Training images are resized to scale x ratio (keep ratio: long side <= W, short <= H), then
    # cropped; test images are resized to scale (the zoo: 2048x512 VOC, 2048x1024 Cityscapes).
    scale: list[int] = field(default_factory=lambda: [2048, 512])
    ratio_range: list[float] = field(default_factory=lambda: [0.5, 2.0])
    batch_size: int = 4  # per GPU (per process)
    num_workers: int = 4
    photometric: bool = True  # PhotoMetricDistortion


@dataclass
class SegScheduleConfig:
    iters: int = 20000
    lr: float = 0.01  # SGD, at reference_batch
    momentum: float = 0.9
    weight_decay: float = 0.0005
    power: float = 0.9  # poly decay to min_lr
    min_lr: float = 0.0001
    reference_batch: int = 16  # total batch the zoo schedule is for (4 GPUs x 4 images)
    # When the total batch (batch_size x processes) differs from reference_batch:
    # linear: lr x batch/reference, iterations and intervals x reference/batch (Goyal et al.);
    # accumulate: gradients accumulated over reference/batch iterations (exact schedule).
    scaling: str = "linear"
    val_interval: int = 2000  # 0: no validation during training (the final evaluation always runs)
    checkpoint_interval: int = 2000
    log_interval: int = 50


@dataclass
class SegTransferConfig:
    model: SegModelConfig = field(default_factory=SegModelConfig)
    data: SegDataConfig = field(default_factory=SegDataConfig)
    schedule: SegScheduleConfig = field(default_factory=SegScheduleConfig)

    def validate(self) -> None:
        for key, value, options in (("model.head", self.model.head, HEADS), ("model.norm", self.model.norm, NORMS),
                                    ("data.dataset", self.data.dataset, DATASETS),
                                    ("schedule.scaling", self.schedule.scaling, SCALINGS),
                                    ("model.test_mode", self.model.test_mode, ("whole", "slide"))):
            if value not in options:
                raise ConfigError(f"{key}: {value!r} is not one of {', '.join(options)}")
        if self.model.depth is not None and self.model.depth not in (18, 34, 50, 101, 152):
            raise ConfigError(f"model.depth: {self.model.depth} is not a ResNet depth (18, 34, 50, 101, 152)")
        for key, pair in (("data.crop_size", self.data.crop_size), ("data.scale", self.data.scale),
                          ("data.ratio_range", self.data.ratio_range)):
            if len(pair) != 2 or min(pair) <= 0:
                raise ConfigError(f"{key}: expected two positive numbers, got {pair}")
        if self.schedule.val_interval < 0:
            raise ConfigError(f"schedule.val_interval must be >= 0, got {self.schedule.val_interval}")
        for key in ("iters", "reference_batch", "checkpoint_interval", "log_interval"):
            if getattr(self.schedule, key) < 1:
                raise ConfigError(f"schedule.{key} must be >= 1, got {getattr(self.schedule, key)}")
        if self.data.batch_size < 1:
            raise ConfigError(f"data.batch_size must be >= 1, got {self.data.batch_size}")

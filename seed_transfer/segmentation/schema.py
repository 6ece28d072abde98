"""Typed schema of the segmentation transfer configs (``configs/seg/*.yaml``).

The YAML files hold the MMSegmentation model-zoo protocol as data (backbone strides and dilations,
heads, dataset, crop and augmentation, schedule): ``configs/seg/base/*.yaml`` state every recipe key,
the defaults here mirror them; :mod:`seed_transfer.segmentation.mmconfig` only maps a config to MMEngine.
Override any key as ``key=value`` (``schedule.iters=100``, ``data.root=/datasets``).
"""

from dataclasses import dataclass, field
from typing import ClassVar

from seed_core.config import ConfigError
from seed_core.value_ranges import above, at_least, within

HEADS = ("fcn", "deeplabv3")
NORMS = ("SyncBN", "BN")
DATASETS = ("voc12", "voc12aug", "cityscapes", "voc_example")
SCALINGS = ("linear", "accumulate")
RESNET_DEPTHS = (18, 34, 50, 101, 152)
BASIC_DEPTHS = (18, 34)  # BasicBlock ResNets (stages end at 64..512 channels); the others are Bottleneck (256..2048)
# (decode, aux) head widths where model.channels / model.aux_channels are None: the zoo's R50 heads,
# and its narrower R18 heads for BasicBlock ResNets
DEFAULT_CHANNELS = {"Bottleneck": (512, 256), "BasicBlock": (128, 64)}


@dataclass
class SegModelConfig:
    RANGES: ClassVar = {
        "depth": at_least(1),
        "strides": at_least(1),
        "dilations": at_least(1),
        "in_index": within(0, 3),
        "channels": at_least(1),
        "dropout_ratio": within(0, 1, high_open=True),
        "loss_weight": at_least(0),
        "fcn_num_convs": at_least(1),
        "aspp_dilations": at_least(1),
        "aux_in_index": within(0, 3),
        "aux_channels": at_least(1),
        "aux_num_convs": at_least(1),
        "aux_dropout_ratio": within(0, 1, high_open=True),
        "aux_loss_weight": at_least(0),
        "slide_stride": at_least(1),
    }
    head: str = "fcn"  # fcn (FCNHead) | deeplabv3 (ASPPHead)
    # ResNet depth; None takes the checkpoint's (a random init needs it: model.depth=50).
    depth: int | None = None
    # SyncBN as in the model zoo; a single process (1 GPU, CPU) runs it as BN (MMEngine reverts it).
    norm: str = "SyncBN"
    # Backbone: per-stage strides and dilations of the ResNet; the zoo's D8 (output stride 8)
    # replaces the strides of stages 3-4 by dilations 2 and 4 (D16 would be 1,2,2,1 / 1,1,1,2).
    strides: list[int] = field(default_factory=lambda: [1, 2, 1, 1])
    dilations: list[int] = field(default_factory=lambda: [1, 1, 2, 4])
    # Decode head: on stage in_index (0-3; 3 = the last, its in_channels follow the depth),
    # `channels` wide (None: the depth's zoo width, 512 for Bottleneck R50/101/152, 128 for
    # BasicBlock R18/R34), dropout before the classifier, cross-entropy with loss_weight.
    in_index: int = 3
    channels: int | None = None
    dropout_ratio: float = 0.1
    loss_weight: float = 1.0
    fcn_num_convs: int = 2  # head fcn only: 3x3 convs of the FCNHead
    fcn_concat_input: bool = True  # head fcn only: concatenate the input to the convs' output
    aspp_dilations: list[int] = field(default_factory=lambda: [1, 12, 24, 36])  # head deeplabv3 only: ASPP rates
    # Auxiliary FCN head (training only), as in the zoo configs: on stage 3 (aux_in_index 2),
    # aux_channels wide (None: 256 for Bottleneck, 64 for BasicBlock), 1 conv, loss weight 0.4.
    aux_head: bool = True
    aux_in_index: int = 2
    aux_channels: int | None = None
    aux_num_convs: int = 1
    aux_concat_input: bool = False
    aux_dropout_ratio: float = 0.1
    aux_loss_weight: float = 0.4
    # FCN-D8 / DeepLabV3-D8 inference: whole image (zoo) or sliding window (data.crop_size windows)
    test_mode: str = "whole"
    # test_mode slide: window stride [H, W]; None: two thirds of the window (rounded down), i.e.
    # windows overlapping by a third, as the zoo's slide configs (512x1024 -> 341x682)
    slide_stride: list[int] | None = None

    def head_channels(self, depth: int) -> tuple[int, int]:
        """(decode, aux) head widths at ``depth``: model.channels / model.aux_channels, or where
        None the zoo's width for the depth's block type (:data:`DEFAULT_CHANNELS`)."""
        default = DEFAULT_CHANNELS["BasicBlock" if depth in BASIC_DEPTHS else "Bottleneck"]
        return (
            default[0] if self.channels is None else self.channels,
            default[1] if self.aux_channels is None else self.aux_channels,
        )


@dataclass
class SegDataConfig:
    RANGES: ClassVar = {
        "crop_size": at_least(1),
        "scale": at_least(1),
        "ratio_range": above(0),
        "batch_size": at_least(1),
        "num_workers": at_least(0),
        "cat_max_ratio": within(0, 1, low_open=True),
        "flip_prob": within(0, 1),
    }
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
    # RandomCrop: retry (up to 10 times) a crop where one class covers more than this share of
    # the labelled pixels; 1.0 takes the first crop
    cat_max_ratio: float = 0.75
    flip_prob: float = 0.5  # RandomFlip (horizontal)


@dataclass
class SegScheduleConfig:
    RANGES: ClassVar = {
        "iters": at_least(1),
        "lr": above(0),
        "momentum": within(0, 1, high_open=True),
        "weight_decay": at_least(0),
        "power": at_least(0),
        "min_lr": at_least(0),
        "reference_batch": at_least(1),
        "val_interval": at_least(0),
        "checkpoint_interval": at_least(1),
        "log_interval": at_least(1),
    }
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
        """Names, list lengths and checks across keys; each number's own range is its ``RANGES`` entry,
        checked before this by :func:`seed_core.config.load_config`."""
        for key, value, options in (
            ("model.head", self.model.head, HEADS),
            ("model.norm", self.model.norm, NORMS),
            ("data.dataset", self.data.dataset, DATASETS),
            ("schedule.scaling", self.schedule.scaling, SCALINGS),
            ("model.test_mode", self.model.test_mode, ("whole", "slide")),
        ):
            if value not in options:
                raise ConfigError(f"{key}: {value!r} is not one of {', '.join(options)}")
        if self.model.depth is not None and self.model.depth not in RESNET_DEPTHS:
            raise ConfigError(f"model.depth: {self.model.depth} is not a ResNet depth (18, 34, 50, 101, 152)")
        for key, pair in (
            ("data.crop_size", self.data.crop_size),
            ("data.scale", self.data.scale),
            ("data.ratio_range", self.data.ratio_range),
        ):
            if len(pair) != 2:
                raise ConfigError(f"{key}: expected two positive numbers, got {pair}")
        self._validate_recipe()

    def _validate_recipe(self) -> None:
        """The model-zoo recipe's list lengths, and the sliding window within the crop."""
        m = self.model
        for key in ("strides", "dilations"):
            values = getattr(m, key)
            if len(values) != 4:
                raise ConfigError(f"model.{key}: expected four integers >= 1 (one per ResNet stage), got {values}")
        if not m.aspp_dilations:
            raise ConfigError(f"model.aspp_dilations: expected one or more integers >= 1, got {m.aspp_dilations}")
        if m.slide_stride is not None and (
            len(m.slide_stride) != 2 or any(s > c for s, c in zip(m.slide_stride, self.data.crop_size))
        ):
            raise ConfigError(
                f"model.slide_stride: expected null or [H, W] in [1, data.crop_size "
                f"{self.data.crop_size}] (larger strides leave pixels unpredicted), got {m.slide_stride}"
            )

    def slide_window(self) -> tuple[list[int], list[int]]:
        """test_mode slide: (window, stride) [H, W]; the window is data.crop_size, the stride
        model.slide_stride or, where None, two thirds of the window (rounded down)."""
        window = list(self.data.crop_size)
        stride = self.model.slide_stride or [max(1, c * 2 // 3) for c in window]
        return window, list(stride)

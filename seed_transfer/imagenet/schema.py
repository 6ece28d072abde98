"""Typed defaults of the ImageNet evaluations: ``tools/eval_linear.py`` (SGD linear probe on a
frozen backbone, MoCo's protocol) and ``tools/eval_semisup.py`` (whole-network fine-tuning on the
1% / 10% label subsets, SimCLR's protocol). The YAML files in ``configs/eval/`` set the papers'
values and cite them; every key is documented here once.
"""

from dataclasses import dataclass, field
from typing import ClassVar

from seed_core.config import ConfigError
from seed_core.value_ranges import above, at_least, within
from seed_transfer.classification.schema import FeatureConfig, ModelConfig

SCHEDULES = ("step", "cosine")
DEMOS = ("digits",)


@dataclass
class ImageNetDataConfig:
    RANGES: ClassVar = {"train_crop": at_least(1), "num_workers": at_least(0)}
    root: str | None = None  # holds train/<wnid>/<image> and val/<wnid>/<image> (val sorted into class folders)
    demo: str | None = None  # "digits": write scikit-learn's digits as such a folder under <output_dir>/data and use it
    train_crop: int = 224  # RandomResizedCrop size of the training images (+ horizontal flip)
    num_workers: int = 8  # data-loader workers per process
    subset_file: str | None = None  # semi-supervised only: 1percent.txt / 10percent.txt (one file name per line)


@dataclass
class ProbeFeatureConfig(FeatureConfig):
    """Validation transform (resize ``resize``, centre crop ``crop``) and the shared feature cache."""

    cached: bool = False  # linear probe only: train on cached centre-crop features (no augmentation; fast)


@dataclass
class EvalOptimConfig:
    RANGES: ClassVar = {
        "epochs": at_least(1),
        "batch_size": at_least(1),
        "base_lr": above(0),
        "head_lr_scale": above(0),
        "momentum": within(0, 1, high_open=True),
        "weight_decay": at_least(0),
        "milestones": at_least(0),
        "warmup_epochs": at_least(0),
    }
    epochs: int = 100
    batch_size: int = 256  # global, over all processes
    base_lr: float = 30.0  # lr = base_lr * batch_size / 256 (backbone lr when fine-tuning)
    head_lr_scale: float = 1.0  # fine-tuning: classifier lr = backbone lr * head_lr_scale
    momentum: float = 0.9
    nesterov: bool = False
    weight_decay: float = 0.0
    schedule: str = "step"  # step: x0.1 at each of `milestones` (epochs); cosine: per-step cosine to 0
    milestones: list[int] = field(default_factory=lambda: [60, 80])
    warmup_epochs: float = 0.0  # linear warm-up before the cosine schedule


@dataclass
class EvalTrainConfig:
    RANGES: ClassVar = {
        "seed": at_least(0),
        "log_every": at_least(1),
        "eval_every": at_least(1),
        "eval_batch_size": at_least(1),
        "checkpoint_every": at_least(1),
        "max_steps": at_least(1),
    }
    output_dir: str = "outputs/eval_linear"
    seed: int = 0  # classifier initialisation and the data order / augmentation seeds
    amp: bool = True  # fp16 autocast + GradScaler on CUDA (ignored on the CPU)
    log_every: int = 20  # steps between metrics.csv rows
    eval_every: int = 1  # epochs between validation passes (and one at the end)
    eval_batch_size: int = 256  # per process
    checkpoint_every: int = 1000  # steps between atomic checkpoints (and at every epoch end)
    max_steps: int | None = None  # stop after this global step (the schedule still spans all epochs)
    tensorboard: bool = True


@dataclass
class _EvalConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    data: ImageNetDataConfig = field(default_factory=ImageNetDataConfig)
    features: ProbeFeatureConfig = field(default_factory=lambda: ProbeFeatureConfig(resize=256, crop=224))
    optim: EvalOptimConfig = field(default_factory=EvalOptimConfig)
    train: EvalTrainConfig = field(default_factory=EvalTrainConfig)

    def validate(self) -> None:
        """Names and checks across keys; each number's own range is its ``RANGES`` entry, checked
        before this by :func:`seed_core.config.load_config`."""
        o, d = self.optim, self.data
        if self.model.weights in (None, "random") and not self.model.arch:
            raise ConfigError("a random-init model needs model.arch (e.g. model.arch=resnet18)")
        if not (d.root or d.demo):
            raise ConfigError(
                "data.root is required: the folder holding train/<class>/ and val/<class>/ "
                "(e.g. data.root=/path/imagenet), or data.demo=digits for the offline demo"
            )
        if d.demo is not None and d.demo not in DEMOS:
            raise ConfigError(f"data.demo={d.demo!r}: choose one of {', '.join(DEMOS)} (or null)")
        if o.schedule not in SCHEDULES:
            raise ConfigError(f"optim.schedule={o.schedule!r}: choose one of {', '.join(SCHEDULES)}")
        if o.schedule == "step" and any(not 0 < m <= o.epochs for m in o.milestones):
            raise ConfigError(f"optim.milestones={o.milestones} must lie in (0, optim.epochs={o.epochs}]")


@dataclass
class LinearEvalConfig(_EvalConfig):
    """Linear probe: frozen backbone (BN in eval mode), one linear layer on pooled features."""

    def validate(self) -> None:
        super().validate()
        if self.data.subset_file is not None:
            raise ConfigError("data.subset_file is a key of tools/eval_semisup.py; the linear probe uses all of train/")


@dataclass
class SemisupConfig(_EvalConfig):
    """Whole-network fine-tuning on a label subset (1% / 10% of ImageNet train)."""

    def validate(self) -> None:
        super().validate()
        if not self.data.subset_file:
            raise ConfigError(
                "data.subset_file is required: the subset list (e.g. "
                "data.subset_file=/path/1percent.txt, SimCLR's published list: one train image file "
                "name per line)"
            )
        if self.features.cached:
            raise ConfigError(
                "features.cached=true is for the linear probe: fine-tuning changes the backbone, "
                "so its features cannot be cached"
            )

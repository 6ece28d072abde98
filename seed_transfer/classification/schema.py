"""Typed defaults of ``tools/transfer_cls.py`` (linear transfer, kNN and few-shot on frozen features).

Protocol of Ericsson et al., "How Well Do Self-Supervised Models Transfer?" (CVPR 2021).
"""

from dataclasses import dataclass, field
from typing import ClassVar

from seed_core.config import ConfigError
from seed_core.value_ranges import ANY, above, at_least, within

MODEL_UNSAFE_OPTION = "model.allow_unsafe_pickle=true"  # named when the safe unpickler refuses model.weights


@dataclass
class ModelConfig:
    RANGES: ClassVar = {"seed": at_least(0), "mean": ANY, "std": above(0)}
    weights: str | None = None  # checkpoint path (any layout distill.checkpoints reads); null or "random": random init
    arch: str | None = None  # null: the architecture the checkpoint records (student export, MoCo)
    layout: str = "auto"
    allow_unsafe_pickle: bool = False
    name: str | None = None  # row label in tables (default: the file name, or random-<arch>)
    seed: int = 0  # random-init seed
    mean: list[float] = field(default_factory=lambda: [0.485, 0.456, 0.406])  # input normalisation the
    std: list[float] = field(default_factory=lambda: [0.229, 0.224, 0.225])  # checkpoint was trained with


@dataclass
class TransferDataConfig:
    RANGES: ClassVar = {"val_fraction": within(0, 1, low_open=True, high_open=True), "split_seed": at_least(0)}
    name: str = "cifar10"  # seed_transfer.datasets.DATASETS
    root: str | None = None  # the dataset's official folder (or its parent)
    val_fraction: float = 0.2  # validation carved from train when there is no official val split
    split_seed: int = 0


@dataclass
class FeatureConfig:
    RANGES: ClassVar = {
        "resize": at_least(1),
        "crop": at_least(1),
        "batch_size": at_least(1),
        "num_workers": at_least(0),
    }
    resize: int = 224  # shorter side, bicubic
    crop: int = 224  # centre crop
    batch_size: int = 128
    num_workers: int = 4
    amp: bool = True  # fp16 autocast on CUDA (features stored as float32)
    cache_dir: str | None = "~/.cache/seed-transfer/features"  # null: no cache


@dataclass
class LinearConfig:
    RANGES: ClassVar = {
        "num_c": at_least(1),
        "wd_min_exp": ANY,
        "wd_max_exp": ANY,
        "max_iter": at_least(1),
        "n_jobs": at_least(-1),
    }
    enabled: bool = True
    num_c: int = 45  # C = 1/wd for wd in logspace(wd_min_exp, wd_max_exp, num_c)
    wd_min_exp: float = -6.0
    wd_max_exp: float = 5.0
    max_iter: int = 5000  # lbfgs iterations per fit (C is chosen among the fits that converge)
    n_jobs: int = -1  # parallel workers of the sweep (-1: all cores)
    # z-score every feature with the fitting split's statistics before the sweep. Off: the protocol
    # fits raw features (Ericsson et al.). On for backbones whose pooled features are tiny: a random or
    # briefly trained MobileNetV3's are ~1e-10 to 1e-6, where no C gives a determined fit
    standardize: bool = False


@dataclass
class KNNConfig:
    RANGES: ClassVar = {"k": at_least(1), "temperature": above(0)}
    enabled: bool = True
    k: int = 20
    temperature: float = 0.07


FEWSHOT_SPLITS = ("all", "trainval", "test")


@dataclass
class FewShotConfig:
    """Prototypical N-way K-shot episodes on the frozen features (seed_transfer/classification/fewshot.py)."""

    RANGES: ClassVar = {
        "n_way": at_least(2),
        "shots": at_least(1),
        "n_query": at_least(1),
        "episodes": at_least(1),
        "seed": at_least(0),
    }

    enabled: bool = False
    n_way: int = 5
    shots: list[int] = field(default_factory=lambda: [1, 5])  # K: one evaluation per value
    n_query: int = 15  # queries per class: classes with fewer than K + n_query images never take part
    episodes: int = 600
    seed: int = 0  # the same seed gives every model the same episodes
    split: str = "all"  # images the episodes draw from: all (train+val+test) | trainval | test
    normalize: bool = False  # L2-normalise features first (Ericsson et al. use raw features)


@dataclass
class TransferClsConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    data: TransferDataConfig = field(default_factory=TransferDataConfig)
    features: FeatureConfig = field(default_factory=FeatureConfig)
    linear: LinearConfig = field(default_factory=LinearConfig)
    knn: KNNConfig = field(default_factory=KNNConfig)
    fewshot: FewShotConfig = field(default_factory=FewShotConfig)
    output_dir: str = "outputs/transfer_cls"

    def validate(self) -> None:
        """Names, list lengths and checks across keys; each number's own range is its ``RANGES`` entry,
        checked before this by :func:`seed_core.config.load_config`."""
        if self.model.weights in (None, "random") and not self.model.arch:
            raise ConfigError("a random-init model needs model.arch (e.g. model.arch=resnet18)")
        if len(self.model.mean) != 3 or len(self.model.std) != 3:
            raise ConfigError("model.mean and model.std need 3 values (RGB)")
        f = self.fewshot
        if f.split not in FEWSHOT_SPLITS:
            raise ConfigError(f"fewshot.split={f.split!r}; valid values: {', '.join(FEWSHOT_SPLITS)}")
        if not f.shots:
            raise ConfigError("fewshot.shots is empty: give at least one K (e.g. fewshot.shots=[1,5])")

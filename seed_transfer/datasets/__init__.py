"""Classification datasets of the many-shot linear transfer protocol (Ericsson et al., CVPR 2021;
Kornblith et al., CVPR 2019), read from their official on-disk layouts.

    dataset = build_dataset("dtd", "/data/dtd", "trainval", transform=...)
    image, target = dataset[0]          # PIL RGB image (or transform(image)), int class index
    dataset_info("dtd")                 # DatasetInfo(name="dtd", metric="top1", has_official_val=True)

Splits are ``train``, ``val``, ``trainval`` and ``test``. ``val`` exists only for the
datasets with an official val split (else ``ValueError``: the caller carves 20% of train
with a fixed seed); ``trainval`` is train + val, or train alone without an official val.
Each module's docstring gives its layout and the split it uses.
"""

from collections.abc import Callable
import difflib
from pathlib import Path

from seed_core.config import ConfigError

from .aircraft import AIRCRAFT, build_aircraft
from .base import SPLITS, ClassificationDataset, DatasetInfo, ImageFileDataset
from .caltech101 import CALTECH101, build_caltech101
from .cars import CARS, build_cars
from .cifar import CIFAR10, CIFAR100, CifarDataset, build_cifar10, build_cifar100
from .digits import DIGITS, build_digits
from .dtd import DTD, build_dtd
from .flowers import FLOWERS, build_flowers
from .food101 import FOOD101, build_food101
from .imagefolder import IMAGEFOLDER, build_imagefolder
from .pets import PETS, build_pets
from .stamps import STAMPS, build_stamps
from .sun397 import SUN397, build_sun397
from .voc2007 import VOC2007, build_voc2007

_BUILDERS: dict[str, tuple[DatasetInfo, Callable[..., ClassificationDataset]]] = {
    info.name: (info, builder) for info, builder in [
        (CIFAR10, build_cifar10),
        (CIFAR100, build_cifar100),
        (SUN397, build_sun397),
        (DTD, build_dtd),
        (AIRCRAFT, build_aircraft),
        (CARS, build_cars),
        (PETS, build_pets),
        (FLOWERS, build_flowers),
        (CALTECH101, build_caltech101),
        (FOOD101, build_food101),
        (VOC2007, build_voc2007),
        (IMAGEFOLDER, build_imagefolder),
        (DIGITS, build_digits),  # offline example data (scikit-learn)
        (STAMPS, build_stamps),  # offline natural-object photos (Tux Paint stamps, Debian package)
    ]
}
DATASETS: dict[str, DatasetInfo] = {name: info for name, (info, _) in _BUILDERS.items()}


def dataset_info(name: str) -> DatasetInfo:
    """Metric and val-split availability of a dataset (``imagefolder``: see the built dataset's ``info``)."""
    if name not in DATASETS:
        close = difflib.get_close_matches(name, DATASETS, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ConfigError(f"unknown dataset {name!r}{hint}; valid names: {', '.join(DATASETS)}")
    return DATASETS[name]


def build_dataset(name: str, root: str | Path, split: str, transform: Callable | None = None) -> ClassificationDataset:
    """Split ``split`` of dataset ``name`` stored under ``root`` in its official layout."""
    info = dataset_info(name)
    if split not in SPLITS:
        raise ValueError(f"{name}: unknown split {split!r}; valid splits: {', '.join(SPLITS)}")
    return _BUILDERS[info.name][1](root, split, transform)


__all__ = ["DATASETS", "SPLITS", "ClassificationDataset", "CifarDataset", "DatasetInfo", "ImageFileDataset",
           "build_dataset", "dataset_info"]

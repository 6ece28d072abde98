"""Data of the ImageNet evaluations: the train/val folders, the supervised augmentation, seeded
training samples (so resume and DDP see the views of an uninterrupted single-process run), and
the offline demo folder.

Training items are keyed ``(index, sample_seed)`` by :class:`distill.data.ResumableSampler`; the
augmentation of an image is drawn from ``sample_seed`` alone (:class:`distill.data.SeededViews`).
"""

from pathlib import Path

import numpy as np
import torch
import torchvision.transforms as T
from torch.utils.data import Dataset

from distill.data import SeededViews
from seed_core import distributed as du
from seed_core.config import resolve_path
from seed_core.errors import MissingFile
from seed_transfer.classification.features import Features
from seed_transfer.datasets import ClassificationDataset, build_dataset

from .subsets import write_subset_list

DEMO_MARKER = ".complete"
DEMO_SUBSETS = {"1percent.txt": 0.01, "10percent.txt": 0.10}


def train_transform(crop: int, mean, std):
    """Supervised training augmentation of MoCo's linear evaluation and SimCLR's fine-tuning:
    RandomResizedCrop(crop) (scale 0.08-1, bilinear) + horizontal flip."""
    return T.Compose([T.RandomResizedCrop(crop), T.RandomHorizontalFlip(), T.ToTensor(), T.Normalize(mean, std)])


class _Images(Dataset):
    """Item i -> the PIL image of ``dataset`` (labels dropped), for :class:`SeededViews`; a bad
    image is refused, naming it, as every evaluation reader does (:mod:`seed_transfer.datasets.base`)."""

    def __init__(self, dataset: ClassificationDataset):
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int):
        return self.dataset.read_image(index)


class SeededLabelled(Dataset):
    """``[(index, sample_seed)]`` -> (augmented image 3 x H x W, target), seeded per sample."""

    def __init__(self, dataset: ClassificationDataset, transform):
        self.targets = np.asarray(dataset.targets)
        self.views = SeededViews(_Images(dataset), transform, num_views=1)

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, key: tuple[int, int]) -> tuple[torch.Tensor, int]:
        (image,) = self.views[key]
        return image, int(self.targets[key[0]])


class KeyedFeatures(Dataset):
    """``[(index, sample_seed)]`` -> (feature vector D, target) of cached features (no augmentation)."""

    def __init__(self, features: Features):
        self.features = torch.from_numpy(np.ascontiguousarray(features.features, dtype=np.float32))
        self.targets = torch.from_numpy(np.asarray(features.targets, dtype=np.int64))

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, key: tuple[int, int]) -> tuple[torch.Tensor, int]:
        return self.features[key[0]], int(self.targets[key[0]])


class LabelledFeatures(KeyedFeatures):
    """Item i -> (feature vector D, target): validation over cached features."""

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return self.features[index], int(self.targets[index])


def imagenet_split(root: str | Path, split: str, transform=None) -> ClassificationDataset:
    """``train`` or ``val`` of an ImageNet-style folder (``root/train/<wnid>/``, ``root/val/<wnid>/``)."""
    root = Path(root).expanduser()
    if split == "val" and not (root / "val").is_dir():
        raise MissingFile(
            f"ImageNet evaluation needs the validation images sorted into class folders: "
            f"expected {root / 'val'}/<wnid>/<image> beside {root / 'train'}/"
        )
    return build_dataset("imagefolder", root, split, transform)


def write_digits_folder(root: str | Path) -> Path:
    """scikit-learn's real handwritten digits as an ImageNet-style folder, for the offline demos.

    ``root/train/digit<d>/digit<d>_<i>.png`` (the 70% train split of
    :mod:`seed_transfer.datasets.digits`, 1,257 images), ``root/val/...`` (the other 540), and
    class-balanced ``root/1percent.txt`` / ``root/10percent.txt`` in the published lists' format.
    Written once (a marker file records completion); returns ``root``.
    """
    root = Path(root)
    if (root / DEMO_MARKER).is_file():
        return root
    for split, folder in (("train", "train"), ("test", "val")):
        digits = build_dataset("digits", None, split)
        for i in range(len(digits)):
            cls = f"digit{digits.classes[digits.targets[i]]}"
            (root / folder / cls).mkdir(parents=True, exist_ok=True)
            digits.load_image(i).save(root / folder / cls / f"{cls}_{i:04d}.png")
    for name, fraction in DEMO_SUBSETS.items():
        write_subset_list(root / "train", fraction, root / name)
    (root / DEMO_MARKER).write_text("scikit-learn digits, written by seed_transfer.imagenet.data\n")
    return root


def prepare_root(data_cfg, output_dir: str | Path) -> Path:
    """The dataset folder of a run: ``data.root``, or with ``data.demo=digits`` the demo folder written
    (by the main process; the others wait) under ``<output_dir>/data``."""
    if data_cfg.demo is None:
        return Path(resolve_path(data_cfg.root))
    root = Path(output_dir) / "data"
    if du.is_main_process():
        write_digits_folder(root)
    du.barrier()
    return root

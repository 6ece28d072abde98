"""CIFAR-10 and CIFAR-100 from the official python pickles (Krizhevsky, 2009).

Layouts (``root`` is the extracted folder or its parent):
    cifar-10-batches-py/{data_batch_1..5, test_batch, batches.meta}
    cifar-100-python/{train, test, meta}
Splits: the official 50k train / 10k test; no official val split (the caller carves
20% of train). CIFAR-100 uses the 100 fine labels. Images stay in memory as uint8
N x 32 x 32 x 3 arrays and become PIL images in ``__getitem__``. The pickles are read by the
restricted unpickler of :mod:`seed_core.safe_pickle` (arrays, numbers and strings; nothing in a file runs).
"""

from collections.abc import Callable
import pickle
from pathlib import Path

import numpy as np
from PIL import Image

from seed_core import safe_pickle

from .base import ClassificationDataset, DatasetInfo, Layout, find_root, split_parts

CIFAR10 = DatasetInfo("cifar10", "top1", has_official_val=False)
CIFAR100 = DatasetInfo("cifar100", "top1", has_official_val=False)
CIFAR10_LAYOUT = Layout(
    "cifar10", "official CIFAR-10 python layout: cifar-10-batches-py/{data_batch_1..5, test_batch, batches.meta}"
)
CIFAR100_LAYOUT = Layout("cifar100", "official CIFAR-100 python layout: cifar-100-python/{train, test, meta}")


class CifarDataset(ClassificationDataset):
    """CIFAR split held in memory: ``images`` is uint8 N x 32 x 32 x 3 (HWC, RGB)."""

    def __init__(
        self,
        info: DatasetInfo,
        split: str,
        classes: list[str],
        images: np.ndarray,
        targets: np.ndarray,
        transform: Callable | None = None,
    ):
        super().__init__(info, split, classes, targets, transform)
        self.images = images

    def load_image(self, index: int) -> Image.Image:
        return Image.fromarray(self.images[index])


def _load_pickle(layout: Layout, path: Path, what: str, *keys: str) -> dict:
    try:  # the restricted unpickler: a file naming anything but arrays, numbers and strings is refused, not run
        contents = safe_pickle.load(layout.file(path, what), "a CIFAR file", encoding="bytes")
    except safe_pickle.RefusedPickle:
        raise
    except (pickle.UnpicklingError, EOFError, ValueError) as err:  # truncated or not a pickle
        raise layout.malformed(
            path, f"not a complete CIFAR pickle ({type(err).__name__}: {err}); extract the official archive again"
        ) from None
    if not isinstance(contents, dict):
        raise layout.malformed(path, f"expected a dict, found a {type(contents).__name__}")
    # encoding="bytes" gives bytes keys (b"data"); normalise, so pickles re-saved with str keys work too
    contents = {k.decode() if isinstance(k, bytes) else k: v for k, v in contents.items()}
    for key in keys:
        if key not in contents:
            raise layout.malformed(path, f"no key {key!r} (found {sorted(contents)})")
    return contents


def _load_batch(layout: Layout, path: Path, label_key: str, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """One pickled batch -> (images uint8 N x 32 x 32 x 3, labels int64 N)."""
    batch = _load_pickle(layout, path, "data batch", "data", label_key)
    data = np.asarray(batch["data"], dtype=np.uint8)
    labels = np.asarray(batch[label_key], dtype=np.int64)
    if data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or len(data) != len(labels):
        raise layout.malformed(
            path, f"expected N x 3072 data and N labels, got data {data.shape}, {len(labels)} labels"
        )
    if len(labels) and (labels.min() < 0 or labels.max() >= num_classes):
        raise layout.malformed(path, f"labels outside [0, {num_classes})")
    images = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)  # rows are CHW planes: R (1024), G, B
    return np.ascontiguousarray(images), labels


def _build(
    info: DatasetInfo,
    layout: Layout,
    root: Path,
    split: str,
    transform: Callable | None,
    meta_file: str,
    names_key: str,
    label_key: str,
    batch_files: dict[str, list[str]],
) -> CifarDataset:
    parts = split_parts(info, split)
    meta = _load_pickle(layout, root / meta_file, "meta file", names_key)
    classes = [n.decode() if isinstance(n, bytes) else str(n) for n in meta[names_key]]
    batches = [
        _load_batch(layout, root / name, label_key, len(classes)) for part in parts for name in batch_files[part]
    ]
    images = np.concatenate([images for images, _ in batches])
    targets = np.concatenate([labels for _, labels in batches])
    return CifarDataset(info, split, classes, images, targets, transform)


def build_cifar10(root: str | Path, split: str, transform: Callable | None = None) -> CifarDataset:
    root = find_root(root, "cifar-10-batches-py")
    files = {"train": [f"data_batch_{i}" for i in range(1, 6)], "test": ["test_batch"]}
    return _build(CIFAR10, CIFAR10_LAYOUT, root, split, transform, "batches.meta", "label_names", "labels", files)


def build_cifar100(root: str | Path, split: str, transform: Callable | None = None) -> CifarDataset:
    root = find_root(root, "cifar-100-python")
    files = {"train": ["train"], "test": ["test"]}
    return _build(CIFAR100, CIFAR100_LAYOUT, root, split, transform, "meta", "fine_label_names", "fine_labels", files)

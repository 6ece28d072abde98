"""Frozen features of a dataset split, extracted in batches and cached on disk.

The cache key is the content hash of the checkpoint together with the architecture,
dataset, root, split, transform and what the split holds (its classes, targets, image names and
file sizes: :meth:`~seed_transfer.datasets.base.ClassificationDataset.content_digest`), so a C sweep,
a kNN run or a second tool reuses the features, and a changed checkpoint (same path, new bytes) or
images added, removed or replaced under the same names are extracted again.
"""

import hashlib
import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torchvision.transforms as T
from torch.utils.data import DataLoader
from tqdm import tqdm

from seed_core.atomic import atomic_save

log = logging.getLogger(__name__)

FEATURES_VERSION = 1  # bump when extraction changes, to invalidate old caches


@dataclass(frozen=True)
class FeatureTransform:
    """Resize the shorter side to ``resize`` (bicubic), centre-crop ``crop``, normalise."""

    resize: int = 224
    crop: int = 224
    mean: tuple[float, ...] = (0.485, 0.456, 0.406)
    std: tuple[float, ...] = (0.229, 0.224, 0.225)

    def build(self):
        return T.Compose(
            [
                T.Resize(self.resize, interpolation=T.InterpolationMode.BICUBIC),
                T.CenterCrop(self.crop),
                T.ToTensor(),
                T.Normalize(self.mean, self.std),
            ]
        )


@dataclass
class Features:
    features: np.ndarray  # N x D float32
    targets: np.ndarray  # (N,) int64, or N x C int8 for multi-label


def cache_key(
    fingerprint: str, arch: str, dataset: str, root: str, split: str, transform: FeatureTransform, content: str
) -> str:
    """The cache file's name: 32 hex digits of the sha256 of every input (``content``: the split's
    :meth:`~seed_transfer.datasets.base.ClassificationDataset.content_digest`)."""
    blob = json.dumps(
        {
            "v": FEATURES_VERSION,
            "checkpoint": fingerprint,
            "arch": arch,
            "dataset": dataset,
            "root": str(Path(root).resolve()),
            "split": split,
            "transform": asdict(transform),
            "content": content,
        },
        sort_keys=True,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:32]


@torch.inference_mode()
def extract_features(
    backbone: torch.nn.Module,
    dataset,
    batch_size: int = 128,
    num_workers: int = 4,
    device: torch.device | None = None,
    amp: bool = True,
    desc: str = "features",
) -> Features:
    """Pooled features of every image of ``dataset`` (whose ``transform`` is already set)."""
    device = device or torch.device("cuda" if torch.cuda.is_available() else "cpu")
    backbone = backbone.to(device).eval()
    loader = DataLoader(
        dataset, batch_size=batch_size, num_workers=num_workers, shuffle=False, pin_memory=device.type == "cuda"
    )
    chunks = []
    for images, _ in tqdm(loader, desc=desc, dynamic_ncols=True):
        images = images.to(device, non_blocking=True)
        with torch.autocast(device.type, dtype=torch.float16, enabled=amp and device.type == "cuda"):
            chunks.append(backbone(images).float().cpu())
    features = torch.cat(chunks).numpy() if chunks else np.zeros((0, 0), np.float32)
    return Features(features.astype(np.float32), np.asarray(dataset.targets))


def cached_features(key: str, cache_dir: str | Path | None, compute) -> tuple[Features, bool]:
    """``compute()`` unless ``<cache_dir>/<key>.pt`` exists; returns (features, was_cached)."""
    path = Path(cache_dir).expanduser() / f"{key}.pt" if cache_dir else None
    if path is not None and path.is_file():
        blob = torch.load(path, weights_only=True)
        return Features(blob["features"].numpy(), blob["targets"].numpy()), True
    result = compute()
    if path is not None:
        atomic_save(
            {
                "features": torch.from_numpy(result.features),
                "targets": torch.from_numpy(np.ascontiguousarray(result.targets)),
            },
            path,
        )
        log.info("cached features at %s", path)
    return result, False

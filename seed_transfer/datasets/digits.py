"""scikit-learn's handwritten digits (UCI optdigits test set, 1,797 8x8 images, 10 classes).

Real data that installs with scikit-learn: the offline example of linear transfer.
``root`` is ignored. Split (not official; fixed): a stratified 70/30 train/test split
with seed 0; no val split (the caller carves 20% of train). Pixels (0-16) are scaled to
0-255 and the grey image is repeated over RGB; the feature transform upsamples them.
"""

from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from .base import ClassificationDataset, DatasetInfo, split_parts

DIGITS = DatasetInfo("digits", "top1", has_official_val=False)
TEST_FRACTION, SPLIT_SEED = 0.3, 0


class DigitsDataset(ClassificationDataset):
    def __init__(self, split: str, images: np.ndarray, targets: np.ndarray, transform: Callable | None = None):
        super().__init__(DIGITS, split, [str(d) for d in range(10)], targets, transform)
        self.images = images  # uint8 N x 8 x 8

    def load_image(self, index: int) -> Image.Image:
        return Image.fromarray(self.images[index]).convert("RGB")


def build_digits(root: str | Path | None, split: str, transform: Callable | None = None) -> DigitsDataset:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    (part,) = split_parts(DIGITS, split)
    digits = load_digits()
    images = np.round(digits.images * (255 / 16)).astype(np.uint8)
    train_idx, test_idx = train_test_split(np.arange(len(images)), test_size=TEST_FRACTION,
                                           stratify=digits.target, random_state=SPLIT_SEED)
    idx = train_idx if part == "train" else test_idx
    return DigitsDataset(split, images[idx], digits.target[idx], transform)

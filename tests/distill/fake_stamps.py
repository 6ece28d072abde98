"""A fake Tux Paint stamps tree: transparent PNGs in the real category layout.

Every image is 40 x 36 with its left half fully transparent over pure red (the colour a
plain RGB conversion would show) and its right half an opaque colour that encodes the
image (``colour(seed)``), so tests can check both the compositing and which file was read.
"""

from pathlib import Path

import numpy as np
from PIL import Image

from distill.stamps import EVAL_CATEGORIES

SIZE = (40, 36)  # width, height
# Evaluation images: 2 per category, 4 for birds and vehicles (2 of them in sub-folders).
EXTRA_PHOTOS = [
    "animals/birds/owl.png",
    "animals/birds/parrots/lorikeet.png",
    "vehicles/bus.png",
    "vehicles/auto/sedan.png",
]
# Not evaluation images: a drawn stamp inside an evaluation category, a non-photo category.
UNLABELLED = [
    "animals/birds/cartoon/tux.png",
    "symbols/alphabets/a.png",
    "symbols/alphabets/b.png",
    "symbols/math/plus.png",
]
TOO_SMALL = "food/fruit/seed.png"  # 20 x 40: dropped from both lists
MIRROR = "vehicles/bus_mirror.png"  # a flipped copy of vehicles/bus.png: dropped from both lists


def colour(seed: int) -> tuple[int, int, int]:
    return (seed * 37 % 200 + 20, seed * 91 % 200 + 20, 255)


def write_stamp(path: Path, seed: int, mode: str = "RGBA", size: tuple[int, int] = SIZE) -> Path:
    """A stamp as described above; ``mode`` RGBA, LA (grey) or P (palette with a transparent index)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    width, height = size
    rgba = np.zeros((height, width, 4), dtype=np.uint8)
    rgba[:, : width // 2] = (255, 0, 0, 0)  # transparent, with red stored under the alpha
    rgba[:, width // 2 :] = (*colour(seed), 255)
    image = Image.fromarray(rgba, "RGBA")
    if mode == "LA":
        image = image.convert("LA")
    elif mode == "P":
        palette = Image.new("P", size)
        palette.putpalette([255, 0, 0, *colour(seed)] + [0] * (3 * 254))
        palette.putdata([0 if x < width // 2 else 1 for _ in range(height) for x in range(width)])
        palette.info["transparency"] = 0
        image = palette
    image.save(path)
    path.with_suffix(".txt").write_text(f"{path.stem}\n")  # the description Tux Paint keeps beside each stamp
    return path


def photo_paths() -> list[str]:
    """Relative paths of the evaluation images, sorted."""
    return sorted([f"{category}/photo{j}.png" for category in EVAL_CATEGORIES for j in range(2)] + EXTRA_PHOTOS)


def make_stamps(parent: Path) -> Path:
    """``parent/stamps`` with 24 evaluation images (10 classes) and 4 unlabelled ones, plus one
    too small image and one mirror copy; modes cycle through RGBA, LA and P."""
    root = parent / "stamps"
    modes = ("RGBA", "LA", "P")
    for seed, relative in enumerate(photo_paths() + UNLABELLED):
        write_stamp(root / relative, seed, modes[seed % 3])
    write_stamp(root / TOO_SMALL, 99, size=(20, 40))
    write_stamp(root / MIRROR, 98)
    return root

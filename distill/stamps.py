"""The Tux Paint stamps (Debian's ``tuxpaint-stamps-default``): labelled photos and distillation images.

About 800 PNGs (RGBA, typically 60-300 px a side) in a category tree,
``<root>/<category>/<sub>/.../<name>.png``, each with a ``.txt`` description beside it.
Many are real photographs of objects on a transparent background; the rest are drawings
and symbols. One catalogue serves both packages, so both see the same split of the files:

- **Evaluation images** (``labelled_stamps``): the 10 categories in ``EVAL_CATEGORIES``,
  whose folders hold photographs of objects (animals, fruit and vegetables, flowers and
  trees, vehicles, tools), one class per category, sub-folders included, except the
  ``cartoon`` sub-folders: Tux Paint keeps its drawn versions of the same subjects there
  (cartoon apples, Tux the penguin, toy trains). ``town/houses`` is left out although it
  is a natural object category: all of its 32 images sit in ``town/houses/cartoon`` and
  are drawings. The other top-level folders (``symbols`` with alphabets, math, money and
  chess; ``town`` with flags and road signs; ``seasonal``, ``space``, ``clothes``,
  ``hobbies``, ...) are mostly clipart and symbols.
- **Distillation images** (``unlabelled_stamps``): every other PNG, so disjoint from every
  evaluation image by construction.

Both lists keep PNGs whose shorter side is at least ``MIN_SIDE`` (32) px, and skip a
``<name>_mirror.png`` that is a left-right flipped copy of ``<name>.png`` beside it: in the
evaluation set it would put one image on both sides of the split, and horizontal flips are
part of the distillation augmentation anyway. Images are read by the project's one reader,
:func:`seed_core.images.read_rgb` (``open_composited`` here): transparency composited on white,
as every other reader does; converting a transparent PNG straight to RGB would keep whatever
colours lie under the alpha.

With the package as Debian ships it (2022.06.04-1): 223 evaluation images (mammals 65,
birds 35, fruit 26, flowers 25, vegetables 17, vehicles 17, tools 11, fish 11, insects 9,
trees 7) and 537 distillation images.
"""

import hashlib
from collections.abc import Sequence
from pathlib import Path

from PIL import Image
from torch.utils.data import Dataset

from seed_core.errors import DataError, MissingFile
from seed_core.images import read_rgb, to_rgb

DEFAULT_ROOT = "/usr/share/tuxpaint/stamps"
PACKAGE = "tuxpaint-stamps-default"
EVAL_CATEGORIES = (  # class index = position; sorted
    "animals/birds",
    "animals/fish",
    "animals/insects",
    "animals/mammals",
    "food/fruit",
    "food/vegetables",
    "household/tools",
    "plants/flowers",
    "plants/trees",
    "vehicles",
)
DRAWN_FOLDER = "cartoon"  # Tux Paint's sub-folder for drawn versions of a category's subjects
MIRROR_SUFFIX = "_mirror"
MIN_SIDE = 32


def stamps_root(root: str | Path | None = None) -> Path:
    """The stamps folder (``DEFAULT_ROOT`` when ``root`` is None); a missing one says how to install it."""
    path = Path(root if root is not None else DEFAULT_ROOT).expanduser()
    if not path.is_dir():
        raise MissingFile(
            f"Tux Paint stamps not found at {path}; install them with "
            f"`apt-get install --no-install-recommends {PACKAGE}` (Debian/Ubuntu) or set the root"
        )
    return path


def _short_side(path: Path) -> int:
    with Image.open(path) as image:  # reads the header only
        return min(image.size)


def _is_mirror_copy(path: Path) -> bool:
    stem = path.stem
    return stem.endswith(MIRROR_SUFFIX) and path.with_name(stem[: -len(MIRROR_SUFFIX)] + path.suffix).is_file()


def stamp_files(root: str | Path | None = None) -> list[str]:
    """Sorted paths (relative to ``root``, POSIX) of the usable PNGs: shorter side >= ``MIN_SIDE``, no mirror copies."""
    root = stamps_root(root)
    paths = (p for p in root.rglob("*.png") if p.is_file() and not _is_mirror_copy(p))
    return sorted(p.relative_to(root).as_posix() for p in paths if _short_side(p) >= MIN_SIDE)


def category_index(relative_path: str, categories: Sequence[str] = EVAL_CATEGORIES) -> int | None:
    """Class index of a stamp (path relative to the root), or None if it is no evaluation image."""
    parts = relative_path.split("/")
    if DRAWN_FOLDER in parts[:-1]:
        return None
    for index, category in enumerate(categories):
        if relative_path.startswith(category + "/"):
            return index
    return None


def labelled_stamps(root: str | Path | None = None) -> list[tuple[str, int]]:
    """Sorted (relative path, class index into ``EVAL_CATEGORIES``) of every evaluation image."""
    labelled = [(path, category_index(path)) for path in stamp_files(root)]
    return [(path, index) for path, index in labelled if index is not None]


def unlabelled_stamps(root: str | Path | None = None) -> list[str]:
    """Sorted relative paths of every usable PNG that is no evaluation image: the distillation images."""
    return [path for path in stamp_files(root) if category_index(path) is None]


composite = to_rgb  # the project's one reader (seed_core.images): transparency on white
open_composited = read_rgb  # the image file as PIL RGB, transparency composited on white (or ``background``)


class StampImages(Dataset):
    """Distillation source ``data.source: stamps``: item i -> unlabelled stamp i (PIL RGB, on white)."""

    def __init__(self, root: str | Path | None = None):
        self.root = stamps_root(root)
        self.paths = unlabelled_stamps(self.root)
        if not self.paths:
            raise DataError(
                f"no PNG of at least {MIN_SIDE} px outside the evaluation categories under {self.root} "
                f"(data.root): point it at the Tux Paint stamps folder"
            )

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> Image.Image:
        return open_composited(self.root / self.paths[index])

    def image_path(self, index: int) -> Path:
        return self.root / self.paths[index]

    def fingerprint(self) -> str:
        """sha256 of the relative image paths, in index order (not of the pixels): names what item i is."""
        text = "".join(f"{path}\n" for path in self.paths)
        return hashlib.sha256(text.encode(errors="surrogateescape")).hexdigest()  # a non-UTF-8 name: its bytes

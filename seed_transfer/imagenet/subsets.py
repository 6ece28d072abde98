"""ImageNet label subsets for semi-supervised evaluation: SimCLR's ``1percent.txt`` (12,811 images)
and ``10percent.txt`` (128,116 images), published with google-research/simclr and used by SimCLR,
BYOL, SwAV and SEED.

Each line is one train image file name, ``<wnid>_<number>.JPEG`` (e.g. ``n01440764_10026.JPEG``);
the class folder is the part before the last ``_``, so the image is ``train/<wnid>/<name>``.
"""

from collections.abc import Callable
from pathlib import Path

import numpy as np

from seed_core.errors import MissingFile
from seed_transfer.datasets.base import DatasetInfo, ImageFileDataset, Layout, class_folders

SUBSET = DatasetInfo("imagenet-subset", "top1", has_official_val=True)
LAYOUT = Layout("imagenet-subset", "ImageNet train layout: train/<wnid>/<wnid>_<number>.JPEG")
MAX_LISTED = 5  # missing images named in an error


def read_subset_list(path: str | Path) -> list[str]:
    """The image file names of a subset list, in file order (blank lines and ``#`` comments skipped).

    Raises ``FileNotFoundError`` for a missing list and ``ValueError`` (with the line number) for a
    line that is not a ``<class>_<id>.<ext>`` file name, or a name listed twice.
    """
    path = Path(path).expanduser()
    names, seen = [], {}
    for number, line in LAYOUT.lines(path, "subset list (one train image file name per line)"):
        if line.startswith("#"):
            continue
        name = line.split()[0]
        if "/" in name or "_" not in name or "." not in name:
            raise LAYOUT.malformed(
                path,
                f"{name!r} is not an ImageNet train file name like n01440764_10026.JPEG (<wnid>_<number>.JPEG)",
                number,
            )
        if name in seen:
            raise LAYOUT.malformed(path, f"{name!r} is listed twice (first on line {seen[name]})", number)
        seen[name] = number
        names.append(name)
    if not names:
        raise LAYOUT.malformed(path, "lists no images")
    return names


def class_of(name: str) -> str:
    """Class folder of a subset file name: ``n01440764_10026.JPEG`` -> ``n01440764``."""
    return name.rsplit("_", 1)[0]


def build_subset(train_root: str | Path, list_path: str | Path, transform: Callable | None = None) -> ImageFileDataset:
    """Exactly the images listed in ``list_path``, read from the ImageNet train folder ``train_root``.

    Targets index the sorted class folders of ``train_root`` (all of them, so the classifier has one
    output per ImageNet class even when a subset missed one). Every listed image must exist: the
    ``FileNotFoundError`` gives how many are missing and names the first few.
    """
    train_root, list_path = Path(train_root).expanduser(), Path(list_path).expanduser()
    LAYOUT.folder(train_root, "ImageNet train folder")
    classes = class_folders(train_root)
    if not classes:
        raise LAYOUT.missing("class folders (train/<wnid>/) in", train_root)
    index = {name: i for i, name in enumerate(classes)}
    names = read_subset_list(list_path)
    paths = [train_root / class_of(name) / name for name in names]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        shown = ", ".join(missing[:MAX_LISTED]) + (", ..." if len(missing) > MAX_LISTED else "")
        raise MissingFile(
            f"imagenet-subset: {len(missing)} of the {len(names)} images listed in {list_path} are missing from "
            f"{train_root}: {shown}. data.root must hold the full ImageNet train/ folder ({LAYOUT.description}), "
            f"and the list must be the one for this dataset"
        )
    targets = np.array([index[class_of(name)] for name in names], dtype=np.int64)
    return ImageFileDataset(SUBSET, "train", classes, paths, targets, LAYOUT, transform)


def write_subset_list(train_root: str | Path, fraction: float, path: str | Path, seed: int = 0) -> list[str]:
    """Write a class-balanced random subset list of ``train_root`` (``fraction`` of each class, at least one
    image per class) in the published lists' format; returns the names. For demos and new datasets:
    ImageNet evaluations use the published lists."""
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    train_root = Path(train_root)
    rng = np.random.default_rng(seed)
    names = []
    for name in class_folders(train_root):
        files = sorted(p.name for p in (train_root / name).iterdir() if p.is_file() and not p.name.startswith("."))
        take = max(1, round(fraction * len(files)))
        names += sorted(files[i] for i in rng.choice(len(files), size=take, replace=False))
    Path(path).write_text("".join(f"{n}\n" for n in names))
    return names

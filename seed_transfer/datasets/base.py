"""Shared pieces of the transfer dataset readers: the dataset classes and layout checks.

Every reader turns one official on-disk layout into a ``ClassificationDataset`` of
(PIL RGB image, target) pairs. Split files are read and checked when the dataset is
built; images are decoded lazily, by the project's one reader (:func:`seed_core.images.read_rgb`).

Bad images (a missing, empty, truncated or non-image file, one PIL refuses as a decompression
bomb) are refused, not skipped: a score over fewer images than the split holds is a score of
another test set, and the distillation's way (the next readable image in its place) would count
one image twice. When a split of image files is built, the header scan of
:func:`seed_core.bad_images.refuse_bad_images` (the size and header of every file: ~0.1 s per
1,000 JPEGs from a warm page cache, on the main process only, once per process) refuses it with
one ``DataError`` naming the first 3 bad files and their count. A file whose header is fine but
whose data is not (a truncated JPEG) is found only by decoding: the first one read stops the
evaluation with a ``DataError`` naming it (one line in the tools, from a DataLoader worker too).
The distillation sources skip bad images instead (:mod:`seed_core.bad_images`).
"""

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from torch.utils.data import Dataset

from seed_core.bad_images import READ_ERRORS, refuse_bad_images
from seed_core.errors import DataError, MissingFile, UserError
from seed_core.file_content import file_content, sizes_digest
from seed_core.images import read_rgb

SPLITS = ("train", "val", "trainval", "test")
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    metric: str  # "top1" | "mean_per_class" | "map11" (11-point VOC mAP)
    has_official_val: bool  # else the caller carves validation from 20% of train (fixed seed)


def split_parts(info: DatasetInfo, split: str) -> tuple[str, ...]:
    """Official splits that make up ``split``: trainval = train + val, or train alone when there is no val."""
    if split not in SPLITS:
        raise ValueError(f"{info.name}: unknown split {split!r}; valid splits: {', '.join(SPLITS)}")
    if info.has_official_val:
        return ("train", "val") if split == "trainval" else (split,)
    if split == "val":
        raise ValueError(
            f"{info.name} has no official val split; carve the validation set "
            "from split='train' (20%, fixed seed) instead"
        )
    return ("train",) if split == "trainval" else (split,)


def find_root(root: str | Path, *top_level: str) -> Path:
    """The dataset folder: ``root`` itself, or ``root/<top_level>`` for the first such folder that exists.

    The official archives extract a top-level folder (e.g. ``cifar-10-batches-py``), so
    users may point at either that folder or the folder they extracted into.
    """
    root = Path(root).expanduser()
    for name in top_level:
        if (root / name).is_dir():
            return root / name
    return root


class Layout:
    """Checks of one dataset's official layout; every error names the dataset, the path and the layout."""

    def __init__(self, dataset: str, description: str):
        self.dataset = dataset
        self.description = description  # e.g. "official DTD layout: dtd/images/<class>/, ..."

    def missing(self, what: str, path: Path) -> MissingFile:
        """A user error (one line and exit 2 in the tools); still a FileNotFoundError for callers that catch that."""
        return MissingFile(f"{self.dataset}: expected the {what} {path} ({self.description})")

    def malformed(self, path: Path, reason: str, line: int | None = None) -> DataError:
        """A user error (one line and exit 2 in the tools); still a ValueError for callers that catch that."""
        where = f"{path}, line {line}" if line is not None else str(path)
        return DataError(f"{self.dataset}: {where}: {reason}")

    def file(self, path: Path, what: str) -> Path:
        if not path.is_file():
            raise self.missing(what, path)
        return path

    def folder(self, path: Path, what: str) -> Path:
        if not path.is_dir():
            raise self.missing(what, path)
        return path

    def lines(self, path: Path, what: str) -> list[tuple[int, str]]:
        """(1-based line number, stripped line) of the non-blank lines of a text file."""
        with open(self.file(path, what), errors="surrogateescape") as f:  # a non-UTF-8 name: as the OS has it
            return [(number, line.strip()) for number, line in enumerate(f, 1) if line.strip()]

    def loadmat(self, path: Path, what: str, *keys: str) -> dict:
        """A MATLAB file read with ``squeeze_me=True``; each of ``keys`` must be present."""
        import scipy.io  # comes with scikit-image; only the .mat readers need it

        contents = scipy.io.loadmat(self.file(path, what), squeeze_me=True)
        found = sorted(k for k in contents if not k.startswith("__"))  # skip __header__, __version__, ...
        for key in keys:
            if key not in contents:
                raise self.malformed(path, f"no variable {key!r} (found {found})")
        return contents


def class_folders(folder: Path, exclude: Sequence[str] = ()) -> list[str]:
    """Sorted names of the sub-folders of ``folder`` (hidden ones and ``exclude`` left out)."""
    return sorted(
        p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".") and p.name not in exclude
    )


def image_files(folder: Path) -> list[Path]:
    """Sorted image files of ``folder`` (by extension; hidden files left out)."""
    return sorted(
        p
        for p in folder.iterdir()
        if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in IMAGE_EXTENSIONS
    )


class ClassificationDataset(Dataset):
    """(PIL RGB image, target) pairs of one split of a transfer dataset.

    ``targets`` is int64 (N,) class indices, or for multi-label datasets (N, C) int8 with
    1 positive, 0 negative, -1 difficult / ignored. ``transform`` (set by the feature
    extractor) is applied to the PIL image in ``__getitem__``. Subclasses say where the
    pixels come from (``load_image``).
    """

    def __init__(
        self,
        info: DatasetInfo,
        split: str,
        classes: Sequence[str],
        targets: np.ndarray,
        transform: Callable | None = None,
    ):
        targets = np.asarray(targets)
        self.multilabel = targets.ndim == 2
        targets = targets.astype(np.int8 if self.multilabel else np.int64)
        if len(targets) == 0:
            raise ValueError(f"{info.name}: split {split!r} holds no images")
        if self.multilabel and targets.shape[1] != len(classes):
            raise ValueError(f"{info.name}: targets have {targets.shape[1]} columns for {len(classes)} classes")
        if not self.multilabel and (targets.min() < 0 or targets.max() >= len(classes)):
            raise ValueError(f"{info.name}: class index out of range [0, {len(classes)})")
        self.info = info  # per instance: an image folder has an official val split only if root/val exists
        self.split = split
        self.classes = list(classes)
        self.targets = targets
        self.transform = transform

    @property
    def has_official_val(self) -> bool:
        return self.info.has_official_val

    def load_image(self, index: int) -> Image.Image:
        raise NotImplementedError

    def content_digest(self) -> str:
        """sha256 of what the split holds: its classes, its targets and its images
        (:meth:`image_content`); the frozen-feature cache keys on it."""
        digest = hashlib.sha256(json.dumps(self.classes).encode())
        digest.update(np.ascontiguousarray(self.targets).tobytes())
        digest.update(self.image_content().encode())
        return digest.hexdigest()

    def image_content(self) -> str:
        """What identifies the images: here the pixels of a split held in memory (``self.images``:
        CIFAR, digits), hashed; :class:`ImageFileDataset` says it for files."""
        return hashlib.sha256(np.ascontiguousarray(self.images).tobytes()).hexdigest()

    def read_image(self, index: int) -> Image.Image:
        """``load_image(index)``; a file PIL cannot read is a DataError naming it (never skipped: see
        the module docstring)."""
        try:
            return self.load_image(index)
        except UserError:  # already says what to fix (a missing file, a layout)
            raise
        except READ_ERRORS as err:
            paths = getattr(self, "image_paths", None)
            name = f"image {paths[index]}" if paths is not None else f"image {index}"
            raise DataError(
                f"{self.info.name}: {name} of the {self.split} split cannot be read "
                f"({type(err).__name__}: {err}); an evaluation reads every image of its split, "
                f"so replace the file (e.g. from the dataset's archive)"
            ) from None

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index: int) -> tuple:
        image = self.read_image(index)
        if self.transform is not None:
            image = self.transform(image)
        target = self.targets[index] if self.multilabel else int(self.targets[index])
        return image, target

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.info.name!r}, split={self.split!r}, "
            f"{len(self)} images, {len(self.classes)} classes)"
        )


class ImageFileDataset(ClassificationDataset):
    """A ``ClassificationDataset`` whose images are files, opened lazily by the project's one reader
    (:func:`seed_core.images.read_rgb`: transparency on white, 16-bit scaled to 8)."""

    def __init__(
        self,
        info: DatasetInfo,
        split: str,
        classes: Sequence[str],
        image_paths: Sequence[Path],
        targets: np.ndarray,
        layout: Layout,
        transform: Callable | None = None,
    ):
        super().__init__(info, split, classes, targets, transform)
        if len(image_paths) != len(self.targets):
            raise ValueError(f"{info.name}: {len(image_paths)} images for {len(self.targets)} targets")
        self.image_paths = [Path(p) for p in image_paths]
        self.layout = layout
        layout.file(self.image_paths[0], "image")  # fail early on a wrong root: the layout's own message
        refuse_bad_images(  # every file's size and header, up front (the truncated ones: when read)
            self.image_paths,
            f"{info.name}, {split} split",
            "an evaluation reads every image of its split, so replace them (e.g. from the dataset's archive)",
        )

    def load_image(self, index: int) -> Image.Image:
        return read_rgb(self.layout.file(self.image_paths[index], "image"))

    def image_content(self) -> str:
        """The files' names and sizes (:func:`seed_core.file_content.sizes_digest`: one ``stat`` each,
        ~40 us; not the times: files written again in place with the same bytes keep their features)."""
        names = hashlib.sha256("\n".join(map(str, self.image_paths)).encode(errors="surrogateescape")).hexdigest()
        return f"{names}:{sizes_digest(file_content([str(p) for p in self.image_paths]))}"

"""Data pipeline of the distillation trainer: sources, MoCo v2 augmentation, seeded views.

Augmentation randomness is a pure function of (seed, epoch, sample index): the
sampler yields ``(index, sample_seed)`` keys and ``SeededViews`` seeds the global
torch / Python RNGs from ``sample_seed`` around the transform. The views therefore do
not depend on the number of DataLoader workers, on the number of DDP ranks, or on
where a run was resumed, which makes ``--resume`` exact and a 2-process run see the
same images as a 1-process run of the same global batch.
"""

import functools
import hashlib
import math
import os
import random
from collections.abc import Callable, Iterable, Iterator
from typing import NamedTuple

import torch
import torchvision.transforms as T
from PIL import Image
from torch.utils.data import DataLoader, Dataset, Sampler

from seed_core.config import resolve_path
from seed_core.errors import DataError, MissingFile
from seed_core.file_content import file_content
from seed_core.images import read_rgb

from .stamps import DEFAULT_ROOT as STAMPS_ROOT
from .stamps import StampImages

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
SOURCES = ("imagefolder", "filelist", "demo", "stamps")


class Normalization(NamedTuple):
    """Per-channel (RGB) input normalisation of [0, 1] pixels: ``(x - mean) / std``."""

    mean: tuple[float, float, float]
    std: tuple[float, float, float]


IMAGENET = Normalization(IMAGENET_MEAN, IMAGENET_STD)
UNIT_RANGE = Normalization((0.0, 0.0, 0.0), (1.0, 1.0, 1.0))  # no normalisation: the [0, 1] pixels themselves

_MASK64 = (1 << 64) - 1


def _splitmix64(x: int) -> int:
    x = (x + 0x9E3779B97F4A7C15) & _MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK64
    return x ^ (x >> 31)


def mix_seed(*values: int) -> int:
    """Hash integers into a well-spread non-negative 63-bit seed (deterministic, order-sensitive)."""
    h = 0
    for value in values:
        h = _splitmix64(h ^ (value & _MASK64))
    return h >> 1


def mocov2_transform(
    image_size: int = 224, mean=IMAGENET_MEAN, std=IMAGENET_STD, crop_scale_min: float = 0.2, blur: bool = True
) -> Callable[[Image.Image], torch.Tensor]:
    """MoCo v2 augmentation (``main_moco.py --aug-plus``): PIL image -> 3 x image_size x image_size float tensor.

    ``crop_scale_min`` is the smallest RandomResizedCrop area (MoCo: 0.2) and ``blur`` the
    Gaussian blur step, the two things the SEED authors change for SwAV and SimCLR teachers.
    All randomness comes from the global torch RNG, so ``SeededViews`` controls it.
    """
    # MoCo v2 blurs with PIL's ImageFilter.GaussianBlur(radius=sigma); torchvision's
    # GaussianBlur takes sigma directly and needs a finite (odd) kernel: ~10% of the side.
    kernel_size = int(0.1 * image_size) // 2 * 2 + 1
    blurring = [T.RandomApply([T.GaussianBlur(kernel_size, sigma=(0.1, 2.0))], p=0.5)] if blur else []
    return T.Compose(
        [
            T.RandomResizedCrop(image_size, scale=(crop_scale_min, 1.0)),
            T.RandomApply([T.ColorJitter(0.4, 0.4, 0.4, 0.1)], p=0.8),
            T.RandomGrayscale(p=0.2),
            *blurring,
            T.RandomHorizontalFlip(),
            T.ToTensor(),
            T.Normalize(mean, std),
        ]
    )


def draft_short_side(image_size: int, crop_scale_min: float) -> int:
    """The shortest side a training image may be decoded at (``data.jpeg_draft``) so that no crop of
    the MoCo v2 augmentation has fewer pixels across than the ``image_size`` it is resized to.

    RandomResizedCrop's smallest crop covers ``crop_scale_min`` of the image at aspect ratio 3/4 or
    4/3, so its shorter side is sqrt(crop_scale_min x W x H x 3/4) >= sqrt(0.75 crop_scale_min) x S for
    an image whose shorter side is S. Keeping S >= image_size / sqrt(0.75 crop_scale_min) (224 px at
    scale 0.2: 579 px) keeps every crop at or above the output size: the reduction drops only pixels
    the resize would have averaged away. ImageNet's typical 500 x 375 photos are never reduced at
    224 px; large photos (phone cameras, iNaturalist, OpenImages) and small outputs are.
    """
    return math.ceil(image_size / math.sqrt(0.75 * crop_scale_min))


def _sha256_lines(lines: Iterable[str]) -> str:
    digest = hashlib.sha256()
    for line in lines:
        digest.update(line.encode(errors="surrogateescape") + b"\n")  # a non-UTF-8 name: its bytes on disk
    return digest.hexdigest()


_open_rgb = read_rgb  # the project's one reader: transparency on white, 16-bit scaled, as every source reads


def _no_images(root: str) -> DataError:
    """Why torchvision's ImageFolder found nothing to read in ``root``: no class folders, or
    class folders without a single image file (empty, or holding other files only)."""
    from torchvision.datasets.folder import IMG_EXTENSIONS

    layout = f"expected ImageNet's layout root/<class>/<image> with images of type {', '.join(IMG_EXTENSIONS)}"
    classes = sorted(entry.name for entry in os.scandir(root) if entry.is_dir())
    if not classes:
        return DataError(
            f"image folder {root!r} has no class folders: {layout} (for a flat list of images use data.source=filelist)"
        )
    without = [
        name
        for name in classes
        if not any(
            file.lower().endswith(IMG_EXTENSIONS) for _, _, files in os.walk(os.path.join(root, name)) for file in files
        )
    ]
    listed = ", ".join(without[:5]) + (f" and {len(without) - 5} more" if len(without) > 5 else "")
    return DataError(
        f"image folder {root!r}: {len(without)} of its {len(classes)} class folders hold no image "
        f"({listed}); {layout}: add images or remove those folders"
    )


def _refuse_link_loops(root: str) -> None:
    """A DataError naming the link when a symbolic link under ``root`` leads back to a folder that
    contains it (torchvision's ImageFolder follows links, so the loop's images would be listed again
    at every turn until the path grows too long)."""
    for folder, subfolders, _ in os.walk(root, followlinks=True):
        real = os.path.realpath(folder)
        for name in subfolders:
            path = os.path.join(folder, name)
            if os.path.islink(path):
                target = os.path.realpath(path)
                if real == target or real.startswith(target + os.sep):
                    raise DataError(
                        f"image folder {root!r}: the link {path!r} points back to {target!r}, a folder that "
                        f"contains it, so its images would be read again and again: remove or fix the link"
                    )


class ImageFolderImages(Dataset):
    """ImageNet-style ``root/<class>/<image>``; item i -> PIL RGB image (labels dropped).

    A bad file (empty, not an image, oversized, truncated) raises PIL's error here; the
    trainer reads through :class:`seed_core.bad_images.SkipBadImages`, which skips it.
    """

    def __init__(self, root: str, min_short_side: int | None = None):
        from torchvision.datasets import ImageFolder

        if not os.path.isdir(root):
            raise MissingFile(
                f"image folder {root!r} does not exist; expected the layout root/<class>/<image>.jpg (set data.root)"
            )
        _refuse_link_loops(root)  # torchvision follows links: a loop would list the same images many times
        try:
            # not torchvision's reader: one reader everywhere (JPEGs reduced on decode: draft_short_side)
            self.folder = ImageFolder(root, loader=functools.partial(read_rgb, min_short_side=min_short_side))
        except FileNotFoundError:  # torchvision: no class folder / "Found no valid file for the classes"
            raise _no_images(root) from None

    def __len__(self) -> int:
        return len(self.folder)

    def __getitem__(self, index: int) -> Image.Image:
        return self.folder[index][0]

    def image_path(self, index: int) -> str:
        return self.folder.samples[index][0]

    def fingerprint(self) -> str:
        """sha256 of the image paths relative to the root, in index order (not of the pixels)."""
        return _sha256_lines(os.path.relpath(path, self.folder.root) for path, _ in self.folder.samples)


class FileListImages(Dataset):
    """Images listed one per line in ``file_list``; item i -> PIL RGB image, opened lazily.

    Each line is ``<path> [label]``: the label is ignored, blank lines and ``#``
    comments are skipped, paths hold no whitespace. Relative paths are resolved
    against ``root``, or against the folder of ``file_list`` when ``root`` is None, and must stay
    under it (``../`` out of the root is refused, naming the line; an absolute path is read as given).
    A bad or missing file raises PIL's error here; the trainer skips it (:mod:`seed_core.bad_images`).
    """

    def __init__(self, file_list: str, root: str | None = None, min_short_side: int | None = None):
        self.min_short_side = min_short_side  # JPEGs reduced on decode (draft_short_side)
        if not os.path.isfile(file_list):
            raise MissingFile(f"file list {file_list!r} does not exist")
        root = root if root is not None else os.path.dirname(os.path.abspath(file_list))
        with open(file_list, errors="surrogateescape") as f:  # a non-UTF-8 name reads as the OS gives it
            lines = [line.strip() for line in f]
        self.paths = []
        for number, line in enumerate(lines, 1):
            if not line or line.startswith("#"):
                continue
            entry = line.split()[0]
            path = os.path.join(root, entry)  # as before: the fingerprint hashes these strings
            inside = os.path.commonpath([os.path.abspath(root), os.path.abspath(path)]) == os.path.abspath(root)
            if not os.path.isabs(entry) and not inside:  # ../../etc/passwd is refused; absolute paths are explicit
                raise DataError(
                    f"file list {file_list!r}, line {number}: {entry!r} leads outside the root {root!r}; relative "
                    f"paths must stay under data.root (give an absolute path to read a file elsewhere)"
                )
            self.paths.append(path)
        if not self.paths:
            raise DataError(f"file list {file_list!r} lists no images: expected one image path per line")
        if not os.path.isfile(self.paths[0]):
            raise MissingFile(f"image {self.paths[0]!r}, the first entry of {file_list!r}, does not exist")

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> Image.Image:
        return read_rgb(self.paths[index], min_short_side=self.min_short_side)

    def image_path(self, index: int) -> str:
        return self.paths[index]

    def fingerprint(self) -> str:
        """sha256 of the resolved image paths, in index order (not of the pixels)."""
        return _sha256_lines(self.paths)


# Colour natural photos that scikit-image ships inside the package (no pooch, no network).
DEMO_PHOTOS = (
    "astronaut",
    "coffee",
    "chelsea",
    "rocket",
    "hubble_deep_field",
    "immunohistochemistry",
    "retina",
    "motorcycle_left",
)


def _demo_photos(max_short_side: int) -> list[Image.Image]:
    import skimage.data

    arrays = [
        skimage.data.stereo_motorcycle()[0] if name == "motorcycle_left" else getattr(skimage.data, name)()
        for name in DEMO_PHOTOS
    ]
    try:  # optional: scikit-learn's two sample photos (china, flower)
        from sklearn.datasets import load_sample_images

        arrays += list(load_sample_images().images)
    except ImportError:
        pass
    photos = []
    for array in arrays:
        photo = Image.fromarray(array).convert("RGB")
        scale = max_short_side / min(photo.size)
        if scale < 1:  # big photos only cost decode/crop time: RandomResizedCrop rescales anyway
            photo = photo.resize((round(photo.width * scale), round(photo.height * scale)), Image.LANCZOS)
        photos.append(photo)
    return photos


class DemoPhotos(Dataset):
    """Offline demo source: item i -> real photo ``i % n_photos`` (PIL RGB), ``length`` items.

    The photos (see ``DEMO_PHOTOS``) are decoded once and cached; the random
    resized crops of the augmentation make the views of the same photo differ.
    """

    def __init__(self, length: int = 4096, max_short_side: int = 512):
        if length < 1:
            raise DataError(f"demo length must be >= 1, got {length} (data.demo_length)")
        self.length, self.max_short_side = length, max_short_side
        self.photos = _demo_photos(max_short_side)

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> Image.Image:
        return self.photos[index % len(self.photos)]

    def fingerprint(self) -> str:
        """sha256 of the photo list (with scikit-learn's two photos when it is installed) and sizes."""
        return _sha256_lines(
            [
                *DEMO_PHOTOS,
                f"photos={len(self.photos)}",
                f"length={self.length}",
                f"max_short_side={self.max_short_side}",
            ]
        )


def source_content(source: Dataset) -> dict | None:
    """:func:`seed_core.file_content.file_content` of the files of ``source`` (its ``image_path``,
    through a :class:`seed_core.bad_images.SkipBadImages` too), named relative to the source's root;
    None for a source without files (the demo photos). Taken once per source object: a run's teacher
    cache key and its resume fingerprint read the same record (one ``stat`` per image, ~50 s for ImageNet)."""
    inner = getattr(source, "source", source)  # SkipBadImages wraps the source
    image_path = getattr(inner, "image_path", None)
    if image_path is None:
        return None
    if getattr(inner, "_content_record", None) is None:
        paths = [str(image_path(i)) for i in range(len(inner))]
        root = getattr(getattr(inner, "folder", None), "root", None) or getattr(inner, "root", None)
        inner._content_record = file_content(
            paths, (lambda path: os.path.relpath(path, root)) if root is not None else None
        )
    return inner._content_record


def source_identity(data, source: Dataset) -> dict:
    """Which images ``source``, built from ``data`` (a :class:`distill.schema.DataConfig`), holds:
    where from (absolute paths), how many, and the sha256 of their list (None when the source
    has no ``fingerprint()``)."""
    absolute = lambda path: os.path.abspath(resolve_path(path)) if path else None  # noqa: E731
    fingerprint = getattr(source, "fingerprint", None)
    return {
        "source": data.source,
        "root": absolute(data.root),
        "file_list": absolute(data.file_list),
        "images": f"sha256:{fingerprint()}" if fingerprint is not None else None,
        "length": len(source),
        "demo_length": data.demo_length if data.source == "demo" else None,
    }


def build_source_dataset(source: str, root: str | None = None, file_list: str | None = None, **kwargs) -> Dataset:
    """Unlabelled image source by name -> dataset of PIL RGB images.

    ``imagefolder`` needs ``root``; ``filelist`` needs ``file_list`` (``root`` optional);
    ``demo`` takes ``length`` and ``max_short_side`` as keyword arguments; ``stamps`` reads
    ``root`` (default ``/usr/share/tuxpaint/stamps``). Other keyword
    arguments go to the source's constructor (so ``length`` with ``imagefolder`` is a TypeError).
    """
    if source == "imagefolder":
        if root is None:
            raise ValueError("source 'imagefolder' needs root=<folder with root/<class>/<image> layout>")
        return ImageFolderImages(root, **kwargs)
    if source == "filelist":
        if file_list is None:
            raise ValueError("source 'filelist' needs file_list=<text file with one image path per line>")
        return FileListImages(file_list, root, **kwargs)
    if source == "demo":
        return DemoPhotos(**kwargs)
    if source == "stamps":  # Tux Paint stamps outside the evaluation categories (distill/stamps.py)
        return StampImages(root or STAMPS_ROOT, **kwargs)
    raise ValueError(f"unknown data source {source!r}; valid sources: {', '.join(SOURCES)}")


class SeededViews(Dataset):
    """``num_views`` augmented views per sample, seeded by the key's ``sample_seed``.

    ``views[(index, sample_seed)]`` -> list of ``num_views`` tensors 3 x H x W; view v
    is drawn with the global torch and Python RNGs seeded from (sample_seed, v), and
    the caller's RNG states are restored afterwards. SEED uses 1 view (teacher and
    student see the same image), MoCo 2 (query and key). View v does not depend on
    ``num_views``, so SEED's view and SEED + MoCo's first view of a sample are the same.
    With ``with_index`` an item is ``(views, index)``: the distillation engine needs the
    dataset index of every sample of a batch (the key of the teacher cache). A ``dataset``
    that skips bad images (:class:`seed_core.bad_images.SkipBadImages`, which has ``read``)
    makes it ``(views, index, read_index)``: the item whose image was read, ``index`` itself
    unless that image is bad; the views are drawn from ``sample_seed`` all the same.
    """

    def __init__(self, dataset: Dataset, transform: Callable, num_views: int = 1, with_index: bool = False):
        if num_views < 1:
            raise ValueError(f"num_views must be >= 1, got {num_views}")
        self.dataset = dataset
        self.transform = transform
        self.num_views = num_views
        self.with_index = with_index

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: tuple[int, int]) -> list[torch.Tensor] | tuple[list[torch.Tensor], int]:
        index, sample_seed = key
        read = getattr(self.dataset, "read", None)
        image, read_index = read(index) if read is not None else (self.dataset[index], index)
        views = []
        python_state = random.getstate()
        try:
            with torch.random.fork_rng(devices=[]):  # CPU generator only; CUDA RNGs untouched
                for view in range(self.num_views):
                    view_seed = mix_seed(sample_seed, view)
                    torch.default_generator.manual_seed(view_seed)
                    random.seed(view_seed)
                    views.append(self.transform(image))
        finally:
            random.setstate(python_state)
        if not self.with_index:
            return views
        return (views, index, read_index) if read is not None else (views, index)


def sample_seed(seed: int, epoch: int, index: int) -> int:
    """Augmentation seed of sample ``index`` in ``epoch`` of a run seeded with ``seed``."""
    return mix_seed(seed, epoch, index)


class ResumableSampler(Sampler):
    """Per-rank ``(index, sample_seed)`` keys of an epoch, startable at any global step.

    Each epoch permutes the dataset with ``torch.Generator().manual_seed(seed + epoch)``
    (identical on all ranks). Global batch b is ``perm[b*G:(b+1)*G]`` with
    G = batch_size_per_rank * world_size, and rank r takes its slice ``[r*B:(r+1)*B]``,
    so the ranks' batches concatenated in rank order equal the single-process batch.
    With ``drop_last`` the tail that does not fill a global batch is dropped; without
    it the last global batch is padded with the epoch's first indices.
    Use with ``DataLoader(batch_size=batch_size_per_rank, drop_last=True)`` and call
    ``set_position(epoch, step_in_epoch)`` before each epoch.
    """

    def __init__(
        self,
        dataset_len: int,
        batch_size_per_rank: int,
        seed: int,
        rank: int = 0,
        world_size: int = 1,
        drop_last: bool = True,
    ):
        if batch_size_per_rank < 1 or world_size < 1 or not 0 <= rank < world_size:
            raise ValueError(
                f"bad sampler layout: batch_size_per_rank={batch_size_per_rank}, rank={rank}, world_size={world_size}"
            )
        global_batch = batch_size_per_rank * world_size
        if dataset_len < global_batch:
            raise ValueError(
                f"dataset has {dataset_len} images, fewer than one global batch of {global_batch} "
                f"({batch_size_per_rank} per rank x {world_size} ranks)"
            )
        self.dataset_len, self.batch_size, self.seed = dataset_len, batch_size_per_rank, seed
        self.rank, self.world_size, self.drop_last = rank, world_size, drop_last
        self.epoch, self.step_in_epoch = 0, 0

    @property
    def global_batch(self) -> int:
        return self.batch_size * self.world_size

    def steps_per_epoch(self) -> int:
        """Global batches per epoch."""
        if self.drop_last:
            return self.dataset_len // self.global_batch
        return -(-self.dataset_len // self.global_batch)

    def set_position(self, epoch: int, step_in_epoch: int = 0) -> None:
        """Iterate epoch ``epoch`` from global batch ``step_in_epoch`` (0 = the start) on."""
        if epoch < 0 or not 0 <= step_in_epoch <= self.steps_per_epoch():
            raise ValueError(
                f"bad position epoch={epoch}, step_in_epoch={step_in_epoch} "
                f"(an epoch has {self.steps_per_epoch()} steps)"
            )
        self.epoch, self.step_in_epoch = epoch, step_in_epoch

    def rank_indices(self, epoch: int, first_step: int = 0, last_step: int | None = None) -> torch.Tensor:
        """This rank's dataset indices of global steps ``[first_step, last_step)`` of ``epoch``
        (``None``: to the end of the epoch), in the order ``__iter__`` yields them: (steps x B,) int64."""
        perm = torch.randperm(self.dataset_len, generator=torch.Generator().manual_seed(self.seed + epoch))
        steps = self.steps_per_epoch()
        total = steps * self.global_batch
        perm = torch.cat([perm, perm[: total - self.dataset_len]]) if total > self.dataset_len else perm[:total]
        # global batch b of the epoch is row b; rank r takes column block r of it
        by_step = perm.view(steps, self.world_size, self.batch_size)  # steps x world x B
        return by_step[first_step:last_step, self.rank].reshape(-1)

    def __iter__(self) -> Iterator[tuple[int, int]]:
        for index in self.rank_indices(self.epoch, self.step_in_epoch).tolist():
            yield index, sample_seed(self.seed, self.epoch, index)

    def __len__(self) -> int:
        return (self.steps_per_epoch() - self.step_in_epoch) * self.batch_size


def build_loader(
    views: SeededViews, sampler: ResumableSampler, batch_size_per_rank: int, num_workers: int, pin_memory: bool
) -> DataLoader:
    """Loader of per-rank batches: a list of ``num_views`` tensors, each B x 3 x H x W (with
    ``views.with_index``: that list and the B dataset indices, an int64 tensor, and, for a
    dataset that skips bad images, the B indices read)."""
    return DataLoader(
        views,
        batch_size=batch_size_per_rank,
        sampler=sampler,
        num_workers=num_workers,
        pin_memory=pin_memory,
        drop_last=True,
        persistent_workers=num_workers > 0,
    )

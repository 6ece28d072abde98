"""Images a distillation cannot read, and how it trains on without them.

An image is *bad* when its file is empty, is not an image PIL can open, holds more pixels
than ``PIL.Image.MAX_IMAGE_PIXELS`` (a decompression bomb, or a scan far too big to augment),
or does not decode (a truncated JPEG, a broken PNG). Bad images are found twice over:

- up front, by :func:`scan_images`: the file size and PIL's lazy ``Image.open`` (the header
  alone: format, width, height), 0.06-0.1 s per 1,000 JPEGs from a warm page cache on one
  core, against 3-4 s to decode them (so ~2 min for ImageNet's 1.28M); ranks scan a share each;
- while loading, by :class:`SkipBadImages`: what only decoding finds (truncated files).

Neither ends the run. A bad item is replaced by the next readable one (index + 1, + 2, ...,
wrapping around): a pure function of the files, so the same bad files give the same views on
any number of workers or ranks, and a resumed run the views of an uninterrupted one. The
replacement keeps the item's own index, hence its augmentation seed and teacher-cache key.

:class:`BadImages` is the run's record: one warning line per bad image, naming its file and
why; the list in ``run_info.json`` and in the checkpoint (so a resumed run counts what the run
it continues found); and a limit, ``data.max_bad_images``, past which the run stops with a
:class:`~seed_core.errors.DataError` naming the count, the limit and the key.

The evaluations (classification, detection, segmentation readers) skip nothing: a score over
fewer test images is the score of another test set. :func:`refuse_bad_images` runs the same
header scan when a split is opened and refuses it, naming the files; a file that only decoding
finds bad (truncated) is refused when it is read, naming it.
"""

import hashlib
import logging
import math
import os
import time
import warnings

import torch
import torch.distributed as dist
from PIL import Image
from torch.utils.data import Dataset

from . import distributed as du
from .errors import DataError

log = logging.getLogger(__name__)

# What reading one file may raise; each means "this image is bad", not "the code is wrong".
# OSError: unreadable, not an image (PIL.UnidentifiedImageError), truncated; SyntaxError,
# ValueError, EOFError: PIL plugins on broken chunks and markers; DecompressionBombError: over
# twice MAX_IMAGE_PIXELS (PIL only warns between once and twice).
READ_ERRORS = (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError)


def _pixel_fault(width: int, height: int, max_pixels: int | None) -> str | None:
    if max_pixels is not None and width * height > max_pixels:
        return (
            f"{width} x {height} = {width * height / 1e6:.1f} megapixels, more than PIL.Image.MAX_IMAGE_PIXELS "
            f"({max_pixels / 1e6:.1f} megapixels): a possible decompression bomb"
        )
    return None


def _error_text(err: BaseException) -> str:
    return f"{type(err).__name__}: {' '.join(str(err).split())}"


def header_fault(path: str, max_pixels: int | None) -> str | None:
    """Why the image file at ``path`` is bad as far as its size and header tell (None: it may be
    good); nothing is decoded."""
    try:
        if os.path.getsize(path) == 0:
            return "empty file (0 bytes)"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # judged below, against max_pixels
            with Image.open(path) as image:
                return _pixel_fault(image.width, image.height, max_pixels)
    except READ_ERRORS as err:
        return _error_text(err)


def scan_images(paths: list[str], max_pixels: int | None) -> dict[int, str]:
    """``{index: why}`` of the bad files of ``paths`` that :func:`header_fault` finds. Under DDP
    each rank scans every world_size-th file and the ranks share what they found."""
    rank, world = du.rank(), du.world_size()
    found = {i: why for i in range(rank, len(paths), world) if (why := header_fault(paths[i], max_pixels))}
    if du.is_distributed():
        shares = [None] * world
        dist.all_gather_object(shares, found)
        found = {i: why for share in shares for i, why in share.items()}
    return dict(sorted(found.items()))


def refuse_bad_images(paths, where: str, fix: str, max_pixels: int | None = None) -> None:
    """A DataError naming the bad files of ``paths`` (the first 3 and the count) that the header scan
    finds: the evaluations' rule, where a score over fewer images would be a score of another set.

    ``where`` names the images in the message (``"imagefolder, test split"``), ``fix`` says what
    to do. Only the main process scans (the others build their datasets at other moments, so no
    collective is possible, and one refusal ends the job); a clean list is remembered for the
    process, so a split built again is not scanned again. ``max_pixels``: None, PIL's current limit.
    """
    if not du.is_main_process():
        return
    paths = [str(path) for path in paths]
    max_pixels = Image.MAX_IMAGE_PIXELS if max_pixels is None else max_pixels
    key = (hashlib.sha256("\0".join(paths).encode(errors="surrogateescape")).hexdigest(), max_pixels)
    if key in _CLEAN_SCANS:
        return
    tic = time.perf_counter()
    found = {i: why for i, path in enumerate(paths) if (why := header_fault(path, max_pixels))}
    log.debug("scanned the %d images of %s in %.1f s: %d bad", len(paths), where, time.perf_counter() - tic, len(found))
    if not found:
        _CLEAN_SCANS.add(key)
        return
    named = [f"{paths[i]} ({why})" for i, why in list(found.items())[:3]]
    more = f" and {len(found) - 3} more" if len(found) > 3 else ""
    raise DataError(f"{where}: {len(found)} of its {len(paths)} images cannot be read: {'; '.join(named)}{more}; {fix}")


_CLEAN_SCANS: set[tuple[str, int | None]] = set()  # (sha256 of the path list, max_pixels) scanned clean here


class SkipBadImages(Dataset):
    """``source`` (item i -> PIL image) with bad images replaced by the next readable item.

    ``read(i)`` -> ``(image, j)``: the image of item j, the first of i, i + 1, ... (modulo the
    length) that is neither in ``known_bad`` ({index: why}, from :func:`scan_images`) nor fails
    to load. ``self[i]`` is that image alone. ``source.image_path(i)``, where the source has it,
    names the files in messages and lets :func:`open_skipping_bad_images` scan them.
    """

    def __init__(self, source: Dataset, known_bad: dict[int, str] | None = None, max_pixels: int | None = None):
        self.source = source
        self.known_bad = dict(known_bad or {})
        self.max_pixels = max_pixels  # captured here: worker processes see the value of the run's start

    def __len__(self) -> int:
        return len(self.source)

    @property
    def fingerprint(self):
        """The source's ``fingerprint`` method, or None when it has none (see :func:`distill.data.source_identity`)."""
        return getattr(self.source, "fingerprint", None)

    def name(self, index: int) -> str:
        """The file of item ``index``, or ``item <index> of <source type>`` for a source without files."""
        image_path = getattr(self.source, "image_path", None)
        return str(image_path(index)) if image_path is not None else f"item {index} of {type(self.source).__name__}"

    def load(self, index: int) -> tuple[Image.Image | None, str | None]:
        """``(image, None)``, or ``(None, why)`` when item ``index`` is bad."""
        if index in self.known_bad:
            return None, self.known_bad[index]
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                image = self.source[index]
        except READ_ERRORS as err:
            return None, _error_text(err)
        why = _pixel_fault(image.width, image.height, self.max_pixels)  # a source without files is checked here
        return (None, why) if why else (image, None)

    def read(self, index: int) -> tuple[Image.Image, int]:
        for step in range(len(self)):
            read_index = (index + step) % len(self)
            image, _ = self.load(read_index)
            if image is not None:
                return image, read_index
        raise DataError(f"none of the {len(self)} images of the data can be read ({self.name(0)}, ...)")

    def __getitem__(self, index: int) -> Image.Image:
        return self.read(index)[0]


def bad_image_limit(max_bad_images: float, length: int) -> int:
    """How many of ``length`` images may be bad: a fraction ``max_bad_images`` < 1 of them, rounded
    up (so that any positive fraction lets one bad image pass), or ``max_bad_images`` itself."""
    if max_bad_images >= 1:
        return int(max_bad_images)
    return math.ceil(round(max_bad_images * length, 9))  # round: 0.1 * 30 is 3.0000000000000004


class BadImages:
    """The bad images a run has met: ``records`` {index: {"index", "path", "reason", "found", "step"}},
    in the order met; ``found`` is ``"scan"`` (up front) or ``"load"`` (``step``: the training step
    whose batch met it first; None in ``tools/distill.py --teacher-only``)."""

    def __init__(self, images: SkipBadImages, max_bad_images: float, where: str):
        self.images = images
        self.max_bad_images = max_bad_images
        self.limit = bad_image_limit(max_bad_images, len(images))
        self.where = where  # the data, in messages: "data.root=/data/train"
        self.records: dict[int, dict] = {}

    def add(self, index: int, reason: str, found: str, step: int | None = None, warn: bool = True) -> None:
        path = self.images.name(index)
        self.records[index] = {"index": index, "path": path, "reason": reason, "found": found, "step": step}
        if warn:
            self.warn(index)

    def warn(self, index: int) -> None:
        """One line (on the main process) naming the bad image ``index``, why, and the count so far."""
        record = self.records[index]
        if record["found"] == "scan":
            found = "found by the scan"
        else:
            found = "met while loading" if record["step"] is None else f"met at step {record['step']}"
        if du.is_main_process():
            log.warning(
                "skipped bad image %s (%s): %s; bad images: %d of at most %d (data.max_bad_images)",
                record["path"],
                found,
                record["reason"],
                list(self.records).index(index) + 1,
                self.limit,
            )

    def note(self, indices: torch.Tensor, read_indices: torch.Tensor, step: int | None, share: bool = True) -> bool:
        """Record the bad images a batch passed over: item i read as j means that i, ..., j - 1
        (modulo the length) are bad. With ``share``, under DDP, the ranks share their batches first
        (one all-gather of 2 x B integers: every rank must call it), so every rank keeps the same
        record and stops at the same step. True when new ones came."""
        pairs = torch.stack([indices, read_indices], dim=1)  # B x 2
        if share and du.is_distributed():
            device = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else None
            pairs = du.concat_all_gather(pairs.to(device)).cpu()  # (world x B) x 2
        skipped = pairs[pairs[:, 0] != pairs[:, 1]].tolist()
        new = False
        for index, read_index in skipped:
            for offset in range((read_index - index) % len(self.images)):
                bad = (index + offset) % len(self.images)
                if bad not in self.records:
                    self.add(bad, self.images.load(bad)[1] or "unreadable (not at every try)", "load", step)
                    new = True
        return new

    def check(self) -> None:
        """A DataError naming the count, the limit and the key, once more images are bad than allowed."""
        if len(self.records) <= self.limit:
            return
        paths = [record["path"] for record in self.records.values()]
        listed = ", ".join(paths[:3]) + (f" and {len(paths) - 3} more" if len(paths) > 3 else "")
        allowed = (
            f"data.max_bad_images={self.max_bad_images:g} of its {len(self.images)} images"
            if self.max_bad_images < 1
            else f"data.max_bad_images={self.max_bad_images:g}"
        )
        raise DataError(
            f"{len(self.records)} bad images in {self.where}, more than the {self.limit} that {allowed} allows "
            f"({listed}): replace or remove them, or raise data.max_bad_images (--resume continues a stopped run)"
        )

    def state(self) -> list[dict]:
        """The records, for the checkpoint (plain containers: ``torch.load(weights_only=True)`` reads them)."""
        return list(self.records.values())

    def restore(self, records: list[dict]) -> None:
        """Take over what the checkpointed run met while loading (the scan's ones are this run's own)."""
        for record in records:
            if record["found"] == "load" and record["index"] not in self.records:
                self.records[record["index"]] = dict(record)

    def summary(self) -> dict:
        """What ``run_info.json`` records under ``bad_images``."""
        return {
            "count": len(self.records),
            "limit": self.limit,
            "max_bad_images": self.max_bad_images,
            "images": self.state(),
        }


def open_skipping_bad_images(source: Dataset, max_bad_images: float, where: str) -> tuple[SkipBadImages, BadImages]:
    """``source`` wrapped in :class:`SkipBadImages`, its files scanned first where it names them
    (``image_path``); a DataError when the scan finds more bad images than allowed."""
    max_pixels = Image.MAX_IMAGE_PIXELS
    image_path = getattr(source, "image_path", None)
    known_bad = {}
    if image_path is not None:
        tic = time.perf_counter()
        known_bad = scan_images([str(image_path(i)) for i in range(len(source))], max_pixels)
        log.info(
            "scanned the %d images of %s in %.1f s: %d bad",
            len(source),
            where,
            time.perf_counter() - tic,
            len(known_bad),
        )
    images = SkipBadImages(source, known_bad, max_pixels)
    bad = BadImages(images, max_bad_images, where)
    for index, reason in known_bad.items():
        bad.add(index, reason, "scan", warn=False)
    bad.check()  # first: past the limit, the run does not start, and one line says why
    for index in known_bad:
        bad.warn(index)
    return images, bad

"""Teacher-embedding cache: the frozen teacher's embedding of every view, computed once.

Views are seeded per (train.seed, epoch, index) (:mod:`distill.data`), so the teacher's
embedding of the view that sample ``index`` gets in ``epoch`` is a pure function of the
teacher, the data, the augmentation seed, ``epoch`` and ``index``. The first run writes it
as it computes it; a later run with the same key reads it instead of running the teacher
(SEED's tau_T and queue sweeps, several students of one teacher). A run that finds every
step it will take in the cache does not even build the teacher.

Layout of ``<teacher.cache_dir>/<teacher arch>_<key hash>/``::

    meta.json           format, the key, embed_dim, dtype, dataset length
    epoch_0000.emb      dataset_length x embed_dim values of ``dtype``, raw: row ``index`` is that sample's embedding
    epoch_0000.written  dataset_length bytes: 1 where the row was written

The key covers everything the embeddings depend on: the teacher (sha256 of its weights
file, or of a model folder's config and weight files; arch, layout as detected, use_head,
vit_pool, input_size, input normalisation as resolved for that layout), the views
(augmentation with its crop scale and blur, image_size, normalisation, train.seed), the data
(source, root, file list, a hash of the image list, length, demo_length) and how the teacher
ran (device type, AMP, channels-last), so that a cached run is bit-identical to a live one.
Not covered: pixels changed under the same file names, and edits of the augmentation code
(bump ``CACHE_FORMAT`` with those).

A batch is written row by row with ``os.pwrite`` at the rows' own offsets, flushed
(``fdatasync``), and only then marked in the ``written`` mask, one byte per row: a row is
never trusted before it is on disk, an interrupted run leaves a cache that the next run
completes, and DDP ranks, which get disjoint indices, write disjoint bytes of the same files.
Reads go through ``np.memmap``. Size: dataset_length x epochs x embed_dim x itemsize bytes,
plus one mask byte per row.
"""

from __future__ import annotations

from collections import Counter
import functools
import hashlib
import json
import logging
import os
import re
import shutil
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

from .checkpoints import CheckpointError, detect_layout
from seed_core.checkpoint_files import model_folder_files, safe_load
from seed_core.config import ConfigError, resolve_path, to_dict
from .data import IMAGENET, source_identity
from seed_core.atomic import atomic_save
from .teacher import resolve_input_norm

log = logging.getLogger(__name__)

CACHE_FORMAT = "seed-transfer/teacher-cache-v1"
AUGMENTATION = "mocov2"  # distill.data.mocov2_transform
META_NAME = "meta.json"


class CacheError(ConfigError):
    """A cache folder whose files do not match its metadata (damaged, or changed during a run);
    the message names the folder to delete. A ConfigError, so the tools print it as one line."""


# ---------------------------------------------------------------- key
def file_sha256(path: str | Path, chunk_size: int = 1 << 22) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


def weights_sha256(path: str | Path) -> str:
    """sha256 of a weights file; of a model folder (Hugging Face, timm): of its files' names and sha256s."""
    files = model_folder_files(path) if os.path.isdir(path) else []
    if not files:
        return file_sha256(path)
    digest = hashlib.sha256()
    for file in files:
        digest.update(f"{file.name}\0{file_sha256(file)}\n".encode())
    return digest.hexdigest()


@functools.lru_cache(maxsize=4)
def _weights_identity(
    path: str, inode: int, size: int, mtime_ns: int, layout: str, allow_unsafe_pickle: bool
) -> tuple[str, str]:
    """(sha256, layout) of a teacher file, the layout detected when ``auto``; remembered per
    file version (path, inode, size, mtime), as the cache key and the resume check both ask."""
    if layout == "auto":
        checkpoint = safe_load(path, allow_unsafe_pickle)  # its errors name the file
        try:
            layout = detect_layout(checkpoint)
        except CheckpointError as e:
            raise CheckpointError(f"{path}: {e}") from None
    return weights_sha256(path), layout


def teacher_identity(cfg, require_file: bool = True) -> dict:
    """What the teacher's embedding of a view depends on: the weights file by content (a moved
    copy is the same teacher), arch, layout (as detected for ``auto``), head, input size and
    input normalisation (as resolved for that layout); shared by the cache key and the resume
    check (:mod:`distill.resume`). Weights that are no file (a teacher built in memory) are
    named instead, unless ``require_file`` (a cache key needs the content)."""
    t = cfg.teacher
    weights = resolve_path(t.weights)
    if weights and (os.path.isfile(weights) or model_folder_files(weights)):
        # a model folder is remembered by its (last) weights file's version
        stat = os.stat(model_folder_files(weights)[-1] if os.path.isdir(weights) else weights)
        sha256, layout = _weights_identity(
            os.path.abspath(weights), stat.st_ino, stat.st_size, stat.st_mtime_ns, t.layout, t.allow_unsafe_pickle
        )
    elif require_file:
        raise ConfigError(
            f"teacher.cache_dir needs teacher.weights to be a file or a model folder (its sha256 is part of the cache "
            f"key), got {t.weights!r}; set teacher.cache_dir=null to run this teacher live"
        )
    else:
        sha256, layout = None, None
    input_norm, _ = resolve_input_norm(t.input_norm, layout)
    return {
        "weights": f"sha256:{sha256}" if sha256 else t.weights,
        "arch": t.arch,
        "layout": layout or t.layout,
        "use_head": t.use_head,
        # only when not the default, so that the keys (and caches) of every other teacher stay as they were
        **({"vit_pool": t.vit_pool} if t.vit_pool != "cls" else {}),
        "input_size": t.input_size,
        "input_norm": [*input_norm.mean, *input_norm.std],
    }


def cache_key(cfg, source: torch.utils.data.Dataset, device: torch.device) -> dict:
    """What the teacher's embeddings of a run's views depend on (see the module docstring)."""
    d = cfg.data
    if getattr(source, "fingerprint", None) is None:
        raise ConfigError(
            f"teacher.cache_dir: the data source {type(source).__name__} cannot say which images it "
            f"holds (no fingerprint() method), so a cache could be read for other data; give it one "
            f"or set teacher.cache_dir=null"
        )
    on_cuda = device.type == "cuda"
    return {
        "format": CACHE_FORMAT,
        "teacher": teacher_identity(cfg),
        "views": {
            "augmentation": AUGMENTATION,
            "image_size": d.image_size,
            "crop_scale_min": d.crop_scale_min,
            "blur": d.blur,
            "mean": list(IMAGENET.mean),
            "std": list(IMAGENET.std),
            "seed": cfg.train.seed,
        },
        "data": source_identity(d, source),
        "compute": {
            "device": device.type,
            "amp": on_cuda and cfg.train.amp,
            "channels_last": on_cuda and cfg.train.channels_last,
        },
    }


def key_digest(key: dict) -> str:
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()


# ---------------------------------------------------------------- sizes
def _si(value: float) -> str:
    """3 significant digits and a decimal prefix: 1281167 -> '1.28M', 16 -> '16'."""
    for prefix in ("", "k", "M", "G", "T"):
        if value < 999.5 or prefix == "T":
            return f"{value:.3g}{prefix}"
        value /= 1000
    raise AssertionError("unreachable")


def _bytes(value: float) -> str:
    text = _si(value)
    return f"{text[:-1]} {text[-1]}B" if text[-1].isalpha() else f"{text} B"


def size_text(dataset_length: int, epochs: int, embed_dim: int, itemsize: int) -> str:
    """``teacher cache: 1.28M x 200 epochs x 128 x 4 bytes = 131 GB`` (+ the written masks)."""
    total = dataset_length * epochs * embed_dim * itemsize
    return (
        f"teacher cache: {_si(dataset_length)} x {epochs} epochs x {embed_dim} x {itemsize} bytes = "
        f"{_bytes(total)} (+ {_bytes(dataset_length * epochs)} of written masks)"
    )


# ---------------------------------------------------------------- files
def _open_sized(path: Path, size: int) -> int:
    """A read-write descriptor of ``path``, created at ``size`` bytes (sparse) if new; every rank may call it."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    current = os.fstat(fd).st_size
    if current == 0:
        os.ftruncate(fd, size)
    elif current != size:
        os.close(fd)
        raise CacheError(
            f"{path} has {current} bytes, its cache's meta.json says {size}: the folder is damaged; "
            f"delete {path.parent} and run again"
        )
    return fd


class TeacherCache:
    """One cache folder: the teacher embeddings of one key, by (epoch, dataset index).

    ``meta`` is None until the first writer calls :meth:`create`. ``read``/``write`` take
    the dataset indices of a batch (int64 tensor, B) and B x embed_dim tensors.
    """

    def __init__(self, folder: str | Path, key: dict):
        self.folder, self.key = Path(folder), key
        self.meta = self._read_meta()
        self._write_fds: dict[int, tuple[int, int]] = {}  # epoch -> (data fd, mask fd)
        self._maps: dict[tuple[int, str], np.memmap] = {}  # (epoch, "emb" | "written") -> read-only map

    @classmethod
    def for_run(cls, cfg, source: torch.utils.data.Dataset, device: torch.device) -> TeacherCache:
        """The folder of ``cfg``'s key under ``teacher.cache_dir``."""
        key = cache_key(cfg, source, device)
        name = f"{re.sub(r'[^A-Za-z0-9._-]', '_', cfg.teacher.arch)}_{key_digest(key)[:16]}"
        return cls(Path(resolve_path(cfg.teacher.cache_dir)) / name, key)

    # --- metadata
    def _read_meta(self) -> dict | None:
        path = self.folder / META_NAME
        if not path.is_file():
            return None
        meta = json.loads(path.read_text())
        if meta.get("format") != CACHE_FORMAT or meta.get("key") != self.key:
            raise CacheError(
                f"{path} belongs to another cache (format {meta.get('format')!r} or key differ): delete {self.folder}"
            )
        return meta

    @property
    def embed_dim(self) -> int | None:
        return None if self.meta is None else self.meta["embed_dim"]

    @property
    def dataset_length(self) -> int:
        return self.key["data"]["length"]

    @property
    def _dtype(self) -> torch.dtype:
        return getattr(torch, self.meta["dtype"])

    @property
    def _row_bytes(self) -> int:
        return self.meta["embed_dim"] * self._dtype.itemsize

    def create(self, embed_dim: int, dtype: torch.dtype) -> None:
        """Write ``meta.json`` for embeddings of ``embed_dim`` x ``dtype`` (every rank may call it:
        the content is the same and the write atomic); check it against an existing one."""
        dtype_name = str(dtype).removeprefix("torch.")
        if self.meta is not None:
            if (self.meta["embed_dim"], self.meta["dtype"]) != (embed_dim, dtype_name):
                raise CacheError(
                    f"{self.folder}: the teacher gives {embed_dim} x {dtype_name}, the cache holds "
                    f"{self.meta['embed_dim']} x {self.meta['dtype']}; delete the folder"
                )
            return
        self.meta = {
            "format": CACHE_FORMAT,
            "embed_dim": embed_dim,
            "dtype": dtype_name,
            "dataset_length": self.dataset_length,
            "key": self.key,
        }
        self.folder.mkdir(parents=True, exist_ok=True)
        atomic_save(self.meta, self.folder / META_NAME, dump=lambda obj, f: f.write(json.dumps(obj, indent=2).encode()))

    # --- size
    def allocated_bytes(self) -> int:
        """Disk space the folder's epoch files already take (they are sparse until written)."""
        if not self.folder.is_dir():
            return 0
        return sum(p.stat().st_blocks * 512 for p in self.folder.glob("epoch_*"))

    def check_disk(self, epochs: int, cache_dir: str) -> None:
        """Log the cache's size for ``epochs`` epochs; refuse when the disk cannot hold what is missing."""
        text = size_text(self.dataset_length, epochs, self.meta["embed_dim"], self._dtype.itemsize)
        needed = self.dataset_length * epochs * (self._row_bytes + 1) - self.allocated_bytes()
        free = shutil.disk_usage(self.folder).free
        log.info(
            "%s in %s; %s still to write, %s free on that disk", text, self.folder, _bytes(max(needed, 0)), _bytes(free)
        )
        if needed > free:
            raise ConfigError(
                f"teacher.cache_dir={cache_dir}: {text}; {_bytes(needed)} are still to write but the "
                f"disk has {_bytes(free)} free; point teacher.cache_dir at a larger disk, or set "
                f"teacher.cache_dir=null to run the teacher live"
            )

    # --- rows
    def _path(self, epoch: int, kind: str) -> Path:
        return self.folder / f"epoch_{epoch:04d}.{kind}"

    def _map(self, epoch: int, kind: str) -> np.memmap | None:
        """Read-only map of an epoch file; None while it does not exist (at its full size) yet."""
        if (epoch, kind) not in self._maps:
            width = 1 if kind == "written" else self._row_bytes
            path = self._path(epoch, kind)
            if self.meta is None or not path.is_file() or path.stat().st_size != self.dataset_length * width:
                return None
            self._maps[epoch, kind] = np.memmap(path, dtype=np.uint8, mode="r", shape=(self.dataset_length, width))
        return self._maps[epoch, kind]

    def written(self, epoch: int, indices: torch.Tensor) -> np.ndarray:
        """Per index (B,), whether its row of ``epoch`` is on disk."""
        mask = self._map(epoch, "written")
        if mask is None:
            return np.zeros(len(indices), dtype=bool)
        return mask[indices.numpy(), 0] == 1

    def read(self, epoch: int, indices: torch.Tensor) -> torch.Tensor:
        """The rows of ``indices`` in ``epoch``: B x embed_dim, in the dtype the teacher produced."""
        rows = np.asarray(self._map(epoch, "emb")[indices.numpy()])  # B x row_bytes, a copy
        return torch.from_numpy(rows).view(self._dtype)

    def write(self, epoch: int, indices: torch.Tensor, embeddings: torch.Tensor) -> None:
        """Store B x embed_dim ``embeddings`` as the rows of ``indices``: data, flush, then the mask."""
        expected = (len(indices), self.meta["embed_dim"])
        if tuple(embeddings.shape) != expected or embeddings.dtype != self._dtype:
            raise CacheError(
                f"{self.folder}: got teacher embeddings {tuple(embeddings.shape)} {embeddings.dtype}, "
                f"expected {expected} {self._dtype}"
            )
        raw = embeddings.detach().cpu().contiguous().view(torch.uint8).numpy()  # B x row_bytes
        data_fd, mask_fd = self._open_for_write(epoch)
        for index, row in zip(indices.tolist(), raw):
            os.pwrite(data_fd, row.tobytes(), index * self._row_bytes)
        os.fdatasync(data_fd)  # the rows are on disk before any mask byte says so
        for index in indices.tolist():
            os.pwrite(mask_fd, b"\x01", index)

    def _open_for_write(self, epoch: int) -> tuple[int, int]:
        if epoch not in self._write_fds:
            self.folder.mkdir(parents=True, exist_ok=True)
            self._write_fds[epoch] = (
                _open_sized(self._path(epoch, "emb"), self.dataset_length * self._row_bytes),
                _open_sized(self._path(epoch, "written"), self.dataset_length),
            )
        return self._write_fds[epoch]

    # --- coverage
    def covers(self, sampler, first_step: int, stop_step: int) -> bool:
        """Whether every sample ``sampler`` (a :class:`distill.data.ResumableSampler`) gives this
        rank in global steps ``[first_step, stop_step)`` is written."""
        steps = sampler.steps_per_epoch()
        for epoch in range(first_step // steps, -(-stop_step // steps)):
            first, last = max(first_step - epoch * steps, 0), min(stop_step - epoch * steps, steps)
            if not self.written(epoch, sampler.rank_indices(epoch, first, last)).all():
                return False
        return True

    def first_unwritten_step(self, sampler, epoch: int) -> int:
        """The first step of ``epoch`` whose batch (this rank's part) is not all written; the
        epoch's step count when every batch is."""
        steps = sampler.steps_per_epoch()
        done = self.written(epoch, sampler.rank_indices(epoch)).reshape(steps, -1).all(axis=1)
        return steps if done.all() else int(np.argmin(done))

    def close(self) -> None:
        for data_fd, mask_fd in self._write_fds.values():
            os.close(data_fd)
            os.close(mask_fd)
        self._write_fds.clear()
        self._maps.clear()


class CachedTeacher:
    """The teacher's embeddings of a batch of views through ``cache``: read when every sample
    of the batch is written there, else computed by ``teacher`` and written (a run with a
    complete cache has no teacher: ``teacher`` is None). Counts the batches of each kind."""

    def __init__(self, cache: TeacherCache, teacher: nn.Module | None):
        self.cache, self.teacher = cache, teacher
        self.read_steps = self.computed_steps = 0

    def __call__(self, epoch: int, indices: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
        """``images`` (B x 3 x H x W, on the device) are the views of ``indices`` in ``epoch``: B x C."""
        if self.cache.written(epoch, indices).all():
            self.read_steps += 1
            return self.cache.read(epoch, indices).to(images.device, non_blocking=True)
        if self.teacher is None:
            raise CacheError(
                f"{self.cache.folder}: rows of epoch {epoch} that were written when this run started "
                f"are missing now (was the folder changed during the run?); run again to complete it"
            )
        embeddings = self.teacher(images)
        self.cache.write(epoch, indices, embeddings)
        self.computed_steps += 1
        return embeddings

    def record(self) -> dict:
        """What this run did with the cache, for the student's export meta."""
        mode = "read" if not self.computed_steps else "wrote" if not self.read_steps else "completed"
        return {
            "folder": str(self.cache.folder),
            "mode": mode,
            "read_steps": self.read_steps,
            "computed_steps": self.computed_steps,
        }


@torch.no_grad()
def teacher_output(
    teacher: nn.Module, image_size: int, device: torch.device, amp: bool, channels_last: bool
) -> tuple[int, torch.dtype]:
    """(embed_dim, dtype) of ``teacher``'s embeddings, from one dummy batch run as the training runs it."""
    images = torch.zeros(2, 3, image_size, image_size, device=device)
    if channels_last:
        images = images.contiguous(memory_format=torch.channels_last)
    with torch.autocast(device.type, dtype=torch.float16, enabled=amp):
        embeddings = teacher(images)
    return embeddings.shape[1], embeddings.dtype


def teacher_views(cfg) -> str | None:
    """What a run's teacher embeddings depend on, as far as its config tells (the cache key adds
    the weights' content and the image list); None for a strategy without a teacher."""
    from .schema import NEEDS_TEACHER

    if cfg.distill.strategy not in NEEDS_TEACHER:
        return None
    tree = to_dict(cfg)
    teacher = {k: v for k, v in tree["teacher"].items() if k not in ("cache_dir", "cache_batch_size")}
    data = {k: v for k, v in tree["data"].items() if k != "num_workers"}
    train = {k: tree["train"][k] for k in ("seed", "amp", "channels_last")}
    return json.dumps([teacher, data, train], sort_keys=True)


def share_teacher_cache(configs: list, cache_dir: Path) -> None:
    """Set ``teacher.cache_dir`` of the distillation configs whose teacher embeddings another one
    also needs (same teacher, data and seed), unless they set one already (ablations, comparisons)."""
    shared = Counter(teacher_views(c) for c in configs)
    for c in configs:
        views = teacher_views(c)
        if views is not None and shared[views] > 1 and c.teacher.cache_dir is None:
            c.teacher.cache_dir = str(cache_dir)

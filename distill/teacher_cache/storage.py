"""Reading and writing the rows of one cache folder (:mod:`.layout`), safely under interruption and DDP.

A batch is written row by row with ``os.pwrite`` at the rows' own offsets, flushed
(``fdatasync``), and only then marked in the ``written`` mask, one byte per row: a row is
never trusted before it is on disk, an interrupted run leaves a cache that the next run
completes, and DDP ranks, which get disjoint indices, write disjoint bytes of the same files
(no lock is needed). Reads go through read-only ``np.memmap``.

``teacher.cache_dtype=float16`` stores the rows rounded to float16 (half the disk of a wide,
use_head=false teacher's 384- to 1536-d embedding) and reads them back in the teacher's dtype;
the run that writes them trains on the same rounded values, so a run that reads them is
bit-identical to it. Only the embedding the SEED loss takes is stored: a ViT teacher's patch
tokens are not cached (at 224 px a ViT-B/14's 256 x 768 of them are 393 kB per image per view
in float16, 200 times its embedding).
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

import numpy as np
import torch

from seed_core.config import ConfigError, resolve_path

from .key import DEFAULT_DTYPE, cache_key, folder_name
from .layout import (
    CacheError,
    bytes_text,
    dtype_name,
    new_meta,
    read_meta,
    row_format,
    size_text,
    view_file,
    view_of_epoch,
    write_meta,
)

log = logging.getLogger(__name__)


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
    the dataset indices of a batch (int64 tensor, B) and B x embed_dim tensors. ``cache_dtype``
    is ``teacher.cache_dtype`` (float32: as the teacher gives them; float16: rounded), ``views``
    is ``teacher.cache_views`` (None: a view per epoch; K: epoch e reads view e mod K).
    """

    def __init__(self, folder: str | Path, key: dict, cache_dtype: str = DEFAULT_DTYPE, views: int | None = None):
        self.folder, self.key = Path(folder), key
        self.cache_dtype, self.views = cache_dtype, views
        self.meta = read_meta(self.folder, key)
        self._write_fds: dict[int, tuple[int, int]] = {}  # view -> (data fd, mask fd)
        self._maps: dict[tuple[int, str], np.memmap] = {}  # (view, "emb" | "written") -> read-only map

    @classmethod
    def for_run(cls, cfg, source: torch.utils.data.Dataset, device: torch.device) -> TeacherCache:
        """The folder of ``cfg``'s key under ``teacher.cache_dir``, stored and bounded as ``cfg.teacher`` says."""
        key = cache_key(cfg, source, device)
        folder = Path(resolve_path(cfg.teacher.cache_dir)) / folder_name(cfg.teacher.arch, key)
        return cls(folder, key, cfg.teacher.cache_dtype, cfg.teacher.cache_views)

    # --- metadata
    @property
    def embed_dim(self) -> int | None:
        return None if self.meta is None else self.meta["embed_dim"]

    @property
    def dataset_length(self) -> int:
        return self.key["data"]["length"]

    @property
    def _dtype(self) -> torch.dtype:
        """The dtype of the stored rows."""
        return getattr(torch, self.meta["dtype"])

    @property
    def teacher_dtype(self) -> torch.dtype:
        """The dtype the teacher gives, in which :meth:`read` returns the rows."""
        return getattr(torch, self.meta.get("teacher_dtype", self.meta["dtype"]))

    @property
    def _row_bytes(self) -> int:
        return self.meta["embed_dim"] * self._dtype.itemsize

    def create(self, embed_dim: int, dtype: torch.dtype) -> None:
        """Write ``meta.json`` for a teacher giving ``embed_dim`` x ``dtype`` (every rank may call
        it: the content is the same and the write atomic); check it against an existing one.
        The rows are stored as ``dtype``, or as float16 with ``cache_dtype=float16``."""
        stored = torch.float16 if self.cache_dtype == "float16" else dtype
        meta = new_meta(self.key, embed_dim, stored, dtype)
        if self.meta is not None:
            if row_format(meta) != row_format(self.meta):
                raise CacheError(
                    f"{self.folder}: the teacher gives {embed_dim} x {dtype_name(dtype)}, the cache holds "
                    f"{self.meta['embed_dim']} x {dtype_name(self.teacher_dtype)}; delete the folder"
                )
            return
        self.meta = meta
        write_meta(self.folder, meta)

    # --- size
    def stored_views(self, epochs: int) -> int:
        """How many views per image a run of ``epochs`` epochs stores: one per epoch, at most ``views``."""
        return epochs if self.views is None else min(epochs, self.views)

    def allocated_bytes(self, views: int | None = None) -> int:
        """Disk space the folder's files of views ``[0, views)`` (None: all) already take (sparse until written)."""
        if not self.folder.is_dir():
            return 0
        files = self.folder.glob("epoch_*") if views is None else self._files(views)
        return sum(p.stat().st_blocks * 512 for p in files if p.is_file())

    def _files(self, views: int) -> list[Path]:
        return [view_file(self.folder, view, kind) for view in range(views) for kind in ("emb", "written")]

    def check_disk(self, epochs: int, cache_dir: str) -> None:
        """Log the cache's size for ``epochs`` epochs (views, dtype, bytes); refuse, before anything is
        written, when the disk cannot hold what is missing, naming what would fit."""
        views = self.stored_views(epochs)
        itemsize = self._dtype.itemsize
        text = size_text(self.dataset_length, epochs, self.meta["embed_dim"], itemsize, self.meta["dtype"], self.views)
        allocated = self.allocated_bytes(views)
        view_bytes = self.dataset_length * (self._row_bytes + 1)  # one view of every image, with its mask
        needed = views * view_bytes - allocated
        free = shutil.disk_usage(self.folder).free
        log.info(
            "%s in %s; %s still to write, %s free on that disk",
            text,
            self.folder,
            bytes_text(max(needed, 0)),
            bytes_text(free),
        )
        if needed <= free:
            return
        fits = []  # what would fit on that disk instead
        half = views * self.dataset_length * (self.meta["embed_dim"] * 2 + 1)  # another key: a new folder
        if itemsize > 2 and half <= free:
            fits.append(f"teacher.cache_dtype=float16 ({bytes_text(half)})")
        k = min((free + allocated) // view_bytes, views - 1)  # allocated: of these views, already there
        if k >= 1:
            fits.append(f"teacher.cache_views={k} ({bytes_text(k * view_bytes)}: epoch e trains on view e mod {k})")
        raise ConfigError(
            f"teacher.cache_dir={cache_dir}: {text}; {bytes_text(needed)} are still to write but the "
            f"disk has {bytes_text(free)} free; point teacher.cache_dir at a larger disk, or set "
            f"teacher.cache_dir=null to run the teacher live"
            + (f"; or store less: {' or '.join(fits)} fits" if fits else "")
        )

    # --- rows
    def _map(self, view: int, kind: str) -> np.memmap | None:
        """Read-only map of a view's file; None while it does not exist (at its full size) yet."""
        if (view, kind) not in self._maps:
            width = 1 if kind == "written" else self._row_bytes
            path = view_file(self.folder, view, kind)
            if self.meta is None or not path.is_file() or path.stat().st_size != self.dataset_length * width:
                return None
            self._maps[view, kind] = np.memmap(path, dtype=np.uint8, mode="r", shape=(self.dataset_length, width))
        return self._maps[view, kind]

    def written(self, epoch: int, indices: torch.Tensor) -> np.ndarray:
        """Per index (B,), whether its row of ``epoch``'s view is on disk."""
        mask = self._map(view_of_epoch(epoch, self.views), "written")
        if mask is None:
            return np.zeros(len(indices), dtype=bool)
        return mask[indices.numpy(), 0] == 1

    def read(self, epoch: int, indices: torch.Tensor) -> torch.Tensor:
        """The rows of ``indices`` in ``epoch``'s view: B x embed_dim, in the dtype the teacher produced."""
        rows = np.asarray(self._map(view_of_epoch(epoch, self.views), "emb")[indices.numpy()])  # B x row_bytes, a copy
        return torch.from_numpy(rows).view(self._dtype).to(self.teacher_dtype)

    def write(self, epoch: int, indices: torch.Tensor, embeddings: torch.Tensor) -> torch.Tensor:
        """Store B x embed_dim ``embeddings`` as the rows of ``indices``: data, flush, then the mask.
        Returns them as stored (rounded to float16 with ``cache_dtype=float16``), in the teacher's
        dtype on their device: what a run reading them later gets."""
        expected = (len(indices), self.meta["embed_dim"])
        if tuple(embeddings.shape) != expected or embeddings.dtype != self.teacher_dtype:
            raise CacheError(
                f"{self.folder}: got teacher embeddings {tuple(embeddings.shape)} {embeddings.dtype}, "
                f"expected {expected} {self.teacher_dtype}"
            )
        stored = embeddings.detach().to(self._dtype)
        raw = stored.cpu().contiguous().view(torch.uint8).numpy()  # B x row_bytes
        data_fd, mask_fd = self._open_for_write(view_of_epoch(epoch, self.views))
        for index, row in zip(indices.tolist(), raw):
            os.pwrite(data_fd, row.tobytes(), index * self._row_bytes)
        os.fdatasync(data_fd)  # the rows are on disk before any mask byte says so
        for index in indices.tolist():
            os.pwrite(mask_fd, b"\x01", index)
        return embeddings if self._dtype == embeddings.dtype else stored.to(embeddings.dtype)

    def _open_for_write(self, view: int) -> tuple[int, int]:
        if view not in self._write_fds:
            self.folder.mkdir(parents=True, exist_ok=True)
            self._write_fds[view] = (
                _open_sized(view_file(self.folder, view, "emb"), self.dataset_length * self._row_bytes),
                _open_sized(view_file(self.folder, view, "written"), self.dataset_length),
            )
        return self._write_fds[view]

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

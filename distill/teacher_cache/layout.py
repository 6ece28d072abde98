"""The files of one cache folder, ``<teacher.cache_dir>/<teacher arch>_<key hash>/``, and its ``meta.json``::

    meta.json           format, the key, embed_dim, dtype (as stored), dataset length
                        (+ teacher_dtype when the values are stored narrower than the teacher gives them)
    epoch_0000.emb      dataset_length x embed_dim values of ``dtype``, raw: row ``index`` is that sample's embedding
    epoch_0000.written  dataset_length bytes: 1 where the row was written

File ``epoch_<j>`` holds view ``j`` of every image: the view drawn with the augmentation seeds of
epoch ``j``. A run draws a new view every epoch, so epoch ``e`` reads file ``e``; with
``teacher.cache_views=K`` epoch ``e`` trains on view ``e mod K`` and reads that file.

Size: dataset_length x views x embed_dim x itemsize bytes, plus one mask byte per row.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from seed_core.atomic import atomic_save
from seed_core.config import ConfigError

from .key import CACHE_FORMAT

META_NAME = "meta.json"
META_FIELDS = {"format": str, "embed_dim": int, "dtype": str, "dataset_length": int, "key": dict}
DTYPES = ("float32", "float16", "bfloat16", "float64")  # what a meta.json may name (torch dtype names)


class CacheError(ConfigError):
    """A cache folder whose files do not match its metadata (damaged, or changed during a run);
    the message names the folder to delete. A ConfigError, so the tools print it as one line (exit 2)."""


def view_file(folder: Path, view: int, kind: str) -> Path:
    """The file of view ``view``: ``kind`` is ``emb`` (the rows) or ``written`` (their mask)."""
    return folder / f"epoch_{view:04d}.{kind}"


def view_of_epoch(epoch: int, views: int | None) -> int:
    """The view epoch ``epoch`` trains on: its own, or with ``views`` = K (teacher.cache_views) view ``epoch mod K``."""
    return epoch if views is None else epoch % views


def dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def _damaged(path: Path, what: str) -> CacheError:
    return CacheError(
        f"{path} is damaged ({what}): delete the folder {path.parent} and run again; "
        f"the run rebuilds that cache (the teacher computes its embeddings again)"
    )


def read_meta(folder: Path, key: dict) -> dict | None:
    """The folder's ``meta.json``, checked against ``key``; None when there is none yet. A file
    that is not JSON, lacks a field or holds a wrong type is refused in one line naming it."""
    path = folder / META_NAME
    if not path.is_file():
        return None
    try:
        meta = json.loads(path.read_bytes())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise _damaged(path, f"not JSON: {e}") from None
    except OSError as e:
        raise CacheError(f"cannot read {path}: {e.strerror}; fix its permissions or delete {folder}") from None
    if not isinstance(meta, dict):
        raise _damaged(path, f"a JSON {type(meta).__name__}, not an object")
    missing = [name for name in META_FIELDS if name not in meta]
    if missing:
        raise _damaged(path, f"no {', '.join(missing)}")
    wrong = [name for name, kind in META_FIELDS.items() if not isinstance(meta[name], kind)]
    if wrong:
        raise _damaged(path, f"{', '.join(f'{name}={meta[name]!r}' for name in wrong)}: of the wrong type")
    if meta["format"] != CACHE_FORMAT or meta["key"] != key:
        raise CacheError(f"{path} belongs to another cache (format {meta['format']!r} or key differ): delete {folder}")
    bad = [name for name in ("dtype", "teacher_dtype") if name in meta and meta[name] not in DTYPES]
    bad += ["embed_dim"] if meta["embed_dim"] < 1 else []
    if bad:
        raise _damaged(path, ", ".join(f"{name}={meta[name]!r}" for name in bad))
    return meta


def new_meta(key: dict, embed_dim: int, stored: torch.dtype, teacher_dtype: torch.dtype) -> dict:
    """The ``meta.json`` of a cache of ``key``: rows of ``embed_dim`` values stored as ``stored``,
    of a teacher that gives ``teacher_dtype`` (recorded only when the two differ, so that every
    cache stored as the teacher gives it keeps the metadata it always had)."""
    meta = {
        "format": CACHE_FORMAT,
        "embed_dim": embed_dim,
        "dtype": dtype_name(stored),
        "dataset_length": key["data"]["length"],
        "key": key,
    }
    if stored != teacher_dtype:
        meta["teacher_dtype"] = dtype_name(teacher_dtype)
    return meta


def row_format(meta: dict) -> tuple:
    """(embed_dim, stored dtype, teacher dtype): what a second writer must agree on."""
    return meta["embed_dim"], meta["dtype"], meta.get("teacher_dtype", meta["dtype"])


def write_meta(folder: Path, meta: dict) -> None:
    """Write ``meta.json`` atomically (every rank may: the content is the same)."""
    folder.mkdir(parents=True, exist_ok=True)
    atomic_save(meta, folder / META_NAME, dump=lambda obj, f: f.write(json.dumps(obj, indent=2).encode()))


# ---------------------------------------------------------------- sizes
def _si(value: float) -> str:
    """3 significant digits and a decimal prefix: 1281167 -> '1.28M', 16 -> '16'."""
    for prefix in ("", "k", "M", "G", "T"):
        if value < 999.5 or prefix == "T":
            return f"{value:.3g}{prefix}"
        value /= 1000
    raise AssertionError("unreachable")


def bytes_text(value: float) -> str:
    """``131 GB``, ``3.07 kB``, ``100 B``."""
    text = _si(value)
    return f"{text[:-1]} {text[-1]}B" if text[-1].isalpha() else f"{text} B"


def size_text(
    dataset_length: int,
    epochs: int,
    embed_dim: int,
    itemsize: int,
    dtype: str | None = None,
    views: int | None = None,
) -> str:
    """``teacher cache: 1.28M x 200 epochs x 128 x 4 bytes = 131 GB (+ 256 MB of written masks)``;
    with ``dtype`` the stored dtype after the size (``= 131 GB of float32``); with ``views`` = K
    fewer than ``epochs`` the K views the epochs reuse (``1.28M x 4 views (reused by 200 epochs) x ...``)."""
    stored = epochs if views is None else min(views, epochs)
    count = f"{stored} epochs" if stored == epochs else f"{stored} views (reused by {epochs} epochs)"
    total = dataset_length * stored * embed_dim * itemsize
    return (
        f"teacher cache: {_si(dataset_length)} x {count} x {embed_dim} x {itemsize} bytes = "
        f"{bytes_text(total)}{f' of {dtype}' if dtype else ''} (+ {bytes_text(dataset_length * stored)} "
        f"of written masks)"
    )

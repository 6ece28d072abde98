"""What identifies a teacher cache: the key of the teacher's embeddings of a run's views.

The key covers everything the embeddings depend on: the teacher (sha256 of its weights file, or
of a model folder's config and weight files; arch, layout as detected, use_head, vit_pool,
input_size, input normalisation as resolved for that layout), the views (augmentation with its
crop scale and blur, image_size, normalisation, train.seed), the data (source, root, file list,
a hash of the image list, length, demo_length, and the files' sizes: an image replaced under the
same name almost always changes its size), how the teacher ran (device type, AMP, channels-last)
and, when not the default, how the values are stored (``teacher.cache_dtype``), so that a cached
run is bit-identical to a live one. Not covered: an image re-encoded to the very same byte count
(the modification times would tell, but they also change when the same files are written again in
place, by an rsync without ``--times`` or a fresh checkout, and the cache should survive that), and
edits of the augmentation code (bump ``CACHE_FORMAT`` with those).

Not in the key: ``teacher.cache_views``. The file of view ``j`` holds the views drawn with the
seeds of epoch ``j`` whether a run reuses ``K`` views or draws a new one every epoch
(:mod:`.views`), so runs with and without a bound share the files they have in common.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
from collections import Counter
from pathlib import Path

import torch

from seed_core.checkpoint_files import model_folder_files, safe_load
from seed_core.config import ConfigError, resolve_path, to_dict
from seed_core.file_content import sizes_digest

from ..checkpoints import CheckpointError, detect_layout
from ..data import IMAGENET, source_content, source_identity
from ..schema import TEACHER_UNSAFE_OPTION, run_precision
from ..teacher import resolve_input_norm

CACHE_FORMAT = "seed-transfer/teacher-cache-v1"
AUGMENTATION = "mocov2"  # distill.data.mocov2_transform
DEFAULT_DTYPE = "float32"  # teacher.cache_dtype that stores the teacher's embeddings as it gives them


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
        checkpoint = safe_load(path, allow_unsafe_pickle, TEACHER_UNSAFE_OPTION)  # its errors name the file
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
    precision = run_precision(cfg, device)
    stored = cfg.teacher.cache_dtype
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
            # only when on, so that the keys (and caches) of full-size decoding stay as they were
            **({"jpeg_draft": True} if d.jpeg_draft else {}),
        },
        "data": {**source_identity(d, source), **_content_key(source)},
        "compute": {
            "device": device.type,
            "amp": precision.dtype is not None,
            "channels_last": precision.channels_last,
            # only for bf16, so that the float32 and CUDA fp16 caches keep their keys (and folders)
            **({"amp_dtype": "bf16"} if precision.dtype == torch.bfloat16 else {}),
        },
        # only when not the default, so that every float32 cache keeps its key (and folder)
        **({"stored_dtype": stored} if stored != DEFAULT_DTYPE else {}),
    }


def _content_key(source) -> dict:
    """``{"sizes": "sha256:..."}`` of the source's files (:func:`seed_core.file_content.sizes_digest`);
    nothing for a source without files (the demo photos: their key is as it was)."""
    content = source_content(source)
    return {"sizes": f"sha256:{sizes_digest(content)}"} if content is not None else {}


def key_digest(key: dict) -> str:
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()


def folder_name(arch: str, key: dict) -> str:
    """``<teacher arch>_<16 hex digits of the key's sha256>``: the cache's folder under teacher.cache_dir."""
    return f"{re.sub(r'[^A-Za-z0-9._-]', '_', arch)}_{key_digest(key)[:16]}"


# keys that do not change which embeddings a run reads: where the cache is, how --teacher-only
# batches, how many views a run reuses (view j's file is the same either way)
NOT_VIEWS = ("cache_dir", "cache_batch_size", "cache_views")


def teacher_views(cfg) -> str | None:
    """What a run's teacher embeddings depend on, as far as its config tells (the cache key adds
    the weights' content and the image list); None for a strategy without a teacher or whose teacher
    must run live (``LIVE_TEACHER``: seed+dense reads its feature maps, which no cache holds)."""
    from ..schema import LIVE_TEACHER, NEEDS_TEACHER

    if cfg.distill.strategy not in NEEDS_TEACHER or cfg.distill.strategy in LIVE_TEACHER:
        return None  # no teacher, or one that must run live (its feature maps): no cache to share
    tree = to_dict(cfg)
    teacher = {k: v for k, v in tree["teacher"].items() if k not in NOT_VIEWS}
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

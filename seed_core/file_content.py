"""What a list of files holds, as far as one ``stat`` per file tells: the record that lets a resumed
distillation, a comparison's stale check and the caches (teacher embeddings, frozen features) notice
images replaced under the same names, without reading a byte of them.

:func:`file_content` hashes the sizes and modification times per block of the list, so that
:func:`content_changes` can say where the files changed; :func:`sizes_digest` is the part of it that
files written again in place with the same bytes keep (an rsync without ``--times``, a fresh checkout:
new times, same sizes): the caches key on it, so that this does not throw away hours of teacher
embeddings. A re-encoded image of the very same byte count goes unseen by the sizes (not by the times).
"""

import hashlib
import os
from collections.abc import Callable

import numpy as np

from . import distributed as du

CONTENT_BLOCKS = 64  # the file list is cut in this many blocks, so that a change is told by where it is


def _stat(path: str) -> tuple[int, int]:
    """(size in bytes, modification time in ns) of ``path``; (-1, 0) for a file that cannot be statted
    (a missing file: the bad-image rules deal with it)."""
    try:
        stat = os.stat(path)
    except OSError:
        return -1, 0
    return stat.st_size, stat.st_mtime_ns


def _file_stats(paths: list[str]) -> np.ndarray:
    """``(size, mtime_ns)`` of each of ``paths`` (files x 2 int64); under DDP each rank stats every
    world-th file and the ranks gather their shares."""
    rank, world = du.rank(), du.world_size()
    stats = np.zeros((len(paths), 2), dtype=np.int64)
    stats[rank::world] = np.array([_stat(path) for path in paths[rank::world]], dtype=np.int64).reshape(-1, 2)
    if du.is_distributed():
        import torch.distributed as dist

        shares = [None] * world
        dist.all_gather_object(shares, stats[rank::world])
        for other, share in enumerate(shares):
            stats[other::world] = share
    return stats


def file_content(paths: list[str], name: Callable[[str], str] | None = None) -> dict:
    """What the files of ``paths`` hold, as far as one ``stat`` each tells: their sizes and modification
    times (ns), hashed per block of the list (``CONTENT_BLOCKS``), so that a comparison can say where
    the files changed (``name(path)``: how to call a file in messages; default its path).

    ``{"files": n, "blocks": [{"first": index, "name": name of that file, "sizes": hex, "times": hex}]}``.
    A replaced or re-encoded image changes its size (almost always) and its time (always); a copy
    that does not keep times (``cp`` without ``-p``) changes the times only: :func:`content_changes`
    tells the two apart. Names are not hashed here (the source's ``fingerprint()`` hashes them).
    """
    name = name if name is not None else str
    stats = _file_stats(paths)  # files x (size, mtime_ns)
    sizes, times = np.ascontiguousarray(stats[:, 0]).astype("<i8"), np.ascontiguousarray(stats[:, 1]).astype("<i8")
    count = max(1, min(CONTENT_BLOCKS, len(paths)))
    blocks = []
    for b in range(count):
        first, end = b * len(paths) // count, (b + 1) * len(paths) // count
        blocks.append(
            {
                "first": first,
                "name": name(paths[first]) if first < len(paths) else "",
                "sizes": hashlib.sha256(sizes[first:end].tobytes()).hexdigest()[:16],
                "times": hashlib.sha256(times[first:end].tobytes()).hexdigest()[:16],
            }
        )
    return {"files": len(paths), "blocks": blocks}


def content_changes(saved: dict, current: dict) -> str | None:
    """None when ``saved`` and ``current`` (two :func:`file_content`) agree; else what changed, in words:
    ``"the sizes of the files changed in 2 of 64 parts of the list (images 0-19 from class0/0.png, ...)"``."""
    if saved == current:
        return None
    if saved.get("files") != current.get("files") or len(saved["blocks"]) != len(current["blocks"]):
        return f"{saved.get('files')} files then, {current.get('files')} now"
    ends = [block["first"] for block in current["blocks"][1:]] + [current["files"]]

    def where(indices: list[int]) -> str:
        parts = [
            f"images {current['blocks'][b]['first']}-{ends[b] - 1} from {current['blocks'][b]['name']}"
            for b in indices[:3]
        ]
        return ", ".join(parts) + (f" and {len(indices) - 3} more parts" if len(indices) > 3 else "")

    pairs = list(zip(saved["blocks"], current["blocks"]))
    sized = [b for b, (old, new) in enumerate(pairs) if old["sizes"] != new["sizes"]]
    timed = [b for b, (old, new) in enumerate(pairs) if old["times"] != new["times"] and b not in sized]
    told = []
    if sized:
        told.append(f"the sizes of files changed in {len(sized)} of {len(pairs)} parts of the list ({where(sized)})")
    if timed:
        told.append(
            f"only the modification times changed in {len(timed)} of {len(pairs)} parts ({where(timed)}: files "
            "rewritten with the same size, or copied without keeping their times)"
        )
    return "; ".join(told) or "the content record differs"


def sizes_digest(content: dict) -> str:
    """sha256 of the file count and the sizes of a :func:`file_content` record (not the times)."""
    sizes = [str(content["files"]), *(block["sizes"] for block in content["blocks"])]
    return hashlib.sha256("\n".join(sizes).encode()).hexdigest()

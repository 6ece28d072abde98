"""One writer per run folder: ``<folder>/.lock`` while a process writes the folder.

    with run_lock(out, "distill"):
        ...                                   # a second process on ``out`` stops with one line

The lock file holds the holder's host, process id, SLURM job id, start time and command. A lock
left by a process that is gone is taken over with a warning: a dead process on this host (its pid
is not running), or the same SLURM job (a requeued job keeps its id, possibly on another node). A
lock held by a live process, or by one on another host that cannot be checked, stops the new
process with one line naming the holder and what to do. The lock is re-entrant within a process
(the comparison's report pass inside its DAG driver), and released when the block ends,
including on an exception, SIGTERM handled as an exception, or submitit's requeue.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import sys
import time
from contextlib import contextmanager
from pathlib import Path

from .errors import UserError

log = logging.getLogger(__name__)
LOCK_NAME = ".lock"
_held: dict[Path, int] = {}  # folder -> depth, in this process
_created: set[Path] = set()  # folders the lock created: removed on release when still empty


class FolderInUse(UserError):
    """Another process is writing the run folder."""


def _holder() -> dict:
    return {
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "slurm_job_id": os.environ.get("SLURM_JOB_ID"),
        "since": time.strftime("%Y-%m-%d %H:%M:%S"),
        "command": " ".join(sys.argv)[:300],
    }


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def _stale(holder: dict) -> str | None:
    """Why the lock's holder is gone (and the lock may be taken over), or None while it may be alive."""
    job = os.environ.get("SLURM_JOB_ID")
    if job and holder.get("slurm_job_id") == job:
        return f"left by an earlier run of this SLURM job ({job}, requeued)"
    if holder.get("host") == socket.gethostname() and not _alive(int(holder.get("pid", -1))):
        return f"left by process {holder.get('pid')}, which is no longer running"
    return None


def acquire(folder: str | Path, tool: str) -> None:
    """Take ``folder``'s lock (creating the folder, removed again on release if nothing was written
    into it), or raise :class:`FolderInUse`."""
    folder = Path(folder).resolve()
    if folder in _held:
        _held[folder] += 1
        return
    if not folder.exists():
        folder.mkdir(parents=True)
        _created.add(folder)
    path = folder / LOCK_NAME
    for _ in range(2):  # a stale lock is removed once, then taken atomically
        try:
            with open(path, "x") as f:
                json.dump({**_holder(), "tool": tool}, f)
            _held[folder] = 1
            return
        except FileExistsError:
            try:
                holder = json.loads(path.read_text())
            except (OSError, ValueError):
                holder = {}
            why = _stale(holder) if holder else "unreadable"
            if why is None:
                raise FolderInUse(
                    f"{folder} is in use by {holder.get('tool', 'a run')} (process {holder.get('pid')} on "
                    f"{holder.get('host')}, since {holder.get('since')}): wait for it to end or use another output "
                    f"folder; if that process is gone, delete {path}"
                ) from None
            log.warning("%s: taking over a stale lock (%s)", path, why)
            path.unlink(missing_ok=True)
    raise FolderInUse(f"{path}: could not take the lock (another process took it meanwhile)")


def release(folder: str | Path) -> None:
    folder = Path(folder).resolve()
    if folder not in _held:
        return
    _held[folder] -= 1
    if _held[folder] == 0:
        del _held[folder]
        (folder / LOCK_NAME).unlink(missing_ok=True)
        if folder in _created:  # a run that stopped before writing anything leaves no folder behind
            _created.discard(folder)
            if not any(folder.iterdir()):
                folder.rmdir()


@contextmanager
def run_lock(folder: str | Path, tool: str, enabled: bool = True):
    """``folder`` locked for this block (``enabled=False``: a no-op, e.g. on non-zero ranks)."""
    if not enabled:
        yield
        return
    acquire(folder, tool)
    try:
        yield
    finally:
        release(folder)

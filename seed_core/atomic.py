"""Writes that never leave a half-written file: a temporary beside the target, fsync, rename.

Also the exclusive ``flock`` that processes building the same thing on first use take turns on,
and the clean-up of the temporaries a killed writer left behind.
"""

import contextlib
import errno
import glob
import logging
import os
import secrets
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import torch

from .errors import UserError

log = logging.getLogger(__name__)
NO_SPACE = (errno.ENOSPC, errno.EDQUOT)  # the disk is full; the user's quota is
LOW_SPACE = 1 << 20  # bytes: a write that failed with less free than this failed for want of space


class DiskFull(UserError, OSError):
    """A write stopped for want of room: the disk (or the user's quota) is full, or the file grew past the
    largest one allowed (``too_big``: ``EFBIG``, the process's file-size limit, ``ulimit -f`` or a
    scheduler's, or the file system's own); the file that was there is intact. ``problem`` and ``fix``
    are the two halves of the message, for callers that say more."""

    def __init__(self, path: Path, free: int | None = None, message: str | None = None, too_big: bool = False):
        self.path, self.too_big = path, too_big
        if too_big:
            limit = _file_size_limit()
            which = (
                f"this process's file-size limit ({limit / 1e6:.1f} MB, ulimit -f)"
                if limit is not None
                else "the largest file its file system allows"
            )
            self.problem = f"the write of {path} reached {which}"
            self.fix = (
                "raise the limit (ulimit -f unlimited, or the job's file-size limit)"
                if limit is not None
                else "write it to another file system"
            )
        else:
            self.problem = f"the disk holding {path} is full"
            self.fix = "free space there (or write elsewhere)"
        left = f" ({free / 1e6:.1f} MB left)" if free is not None and not too_big else ""
        super().__init__(
            message
            or f"{self.problem}{left}: {path.name} was not written and the one there before, if any, is intact; "
            f"{self.fix} and run again"
        )


def _free_bytes(folder: Path) -> int | None:
    try:
        return shutil.disk_usage(folder).free
    except OSError:
        return None


def _file_size_limit() -> int | None:
    """This process's file-size limit in bytes (RLIMIT_FSIZE), None when unlimited or unknown."""
    try:
        import resource
    except ImportError:  # e.g. Windows
        return None
    soft, _ = resource.getrlimit(resource.RLIMIT_FSIZE)
    return None if soft == resource.RLIM_INFINITY else soft


def _errno_of_a_further_write(tmp: Path) -> int | None:
    """The errno that one more write to ``tmp`` fails with (None: it succeeds): the cause that a writer
    which hides it met (torch's zip writer says only ``unexpected pos`` or ``file write failed``)."""
    try:
        with open(tmp, "ab") as f:
            f.write(b"\0" * 65536)
            f.flush()
            os.fsync(f.fileno())
    except OSError as err:
        return err.errno
    return None


def _for_want_of_room(err: BaseException, tmp: Path, folder: Path) -> str | None:
    """Why ``err`` (from writing ``tmp`` in ``folder``) stopped the write, when it was for want of room:
    ``"full"`` (``ENOSPC`` / ``EDQUOT``), ``"limit"`` (``EFBIG``: the file-size limit), else None. The
    errno is looked for in the error's chain, then (for a writer's bare ``RuntimeError`` or ``OSError``
    without one) in a further write to ``tmp``; with nothing found, next to no free space means full."""
    seen = err
    while seen is not None:
        if isinstance(seen, OSError) and seen.errno in (*NO_SPACE, errno.EFBIG):
            return "limit" if seen.errno == errno.EFBIG else "full"
        seen = seen.__cause__ or seen.__context__
    if not isinstance(err, OSError | RuntimeError):
        return None
    further = _errno_of_a_further_write(tmp) if tmp.exists() else None
    if further in NO_SPACE:
        return "full"
    if further == errno.EFBIG:
        return "limit"
    free = _free_bytes(folder)
    return "full" if free is not None and free < LOW_SPACE else None


def _temporary_path(path: Path) -> Path:
    """``.<name>.<random>.tmp`` beside ``path``: hidden, and matched by :func:`remove_stale_temporaries`."""
    return path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")


def _fsync_folder(folder: Path) -> None:
    """Make a rename inside ``folder`` durable (POSIX; a no-op where folders cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # e.g. Windows
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_save(obj, path: str | Path, dump: Callable = torch.save) -> None:
    """``dump(obj, file)`` (``torch.save`` or ``pickle.dump``) to a temporary file beside
    ``path``, then rename: an interrupted write never leaves a truncated file where the
    last good one was.

    The file gets the permissions ``open()`` would give it (0o666 less the umask: created
    with that mode, unlike ``mkstemp``'s 0600). Its bytes are fsynced before the rename and
    the folder after it, so a power loss leaves either the old file or the new one. A
    killed write leaves ``.<name>.<random>.tmp``; :func:`remove_stale_temporaries` removes it.
    A write that stops because the disk is full, or at the file-size limit, raises :class:`DiskFull`
    (one line, naming the path and the fix).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temporary_path(path)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # the umask applies, as for open()
    try:
        with os.fdopen(fd, "wb") as f:
            dump(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as err:
        room = _for_want_of_room(err, tmp, path.parent) if isinstance(err, Exception) else None  # before the unlink
        tmp.unlink(missing_ok=True)
        if room == "limit":
            raise DiskFull(path, too_big=True) from err
        if room == "full":
            raise DiskFull(path, _free_bytes(path.parent)) from err
        raise
    _fsync_folder(path.parent)


@contextlib.contextmanager
def exclusive(lock_file: str | Path) -> Iterator[None]:
    """Hold an exclusive lock on ``lock_file`` (created if missing) for the ``with`` block: processes
    that build the same thing on first use (a dataset folder; parallel jobs of a comparison) take
    turns, and the later ones find it built. POSIX ``flock``; where it is missing, no lock."""
    try:
        import fcntl
    except ImportError:  # e.g. Windows: one process at a time is the user's to arrange
        yield
        return
    lock_file = Path(lock_file)
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_file, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def remove_stale_temporaries(*paths: str | Path) -> None:
    """Delete the ``.<name>.*.tmp`` files that an interrupted :func:`atomic_save` left beside
    each of ``paths`` (a killed run can leave one per checkpoint, as large as the checkpoint).

    Call it when a run that is the only writer of these paths starts, before its first
    save: a temporary being written by another live process would be removed too.
    """
    for path in map(Path, paths):
        for stale in path.parent.glob(f".{glob.escape(path.name)}.*.tmp"):
            size = stale.stat().st_size
            stale.unlink(missing_ok=True)
            log.info("removed %s (%.1f MB), left by an interrupted write of %s", stale, size / 1e6, path.name)

"""The rules of a run folder, the same for every tool that writes one (distillation, the ImageNet
trainers, a fine-tune's seed folders, the ablation):

- the folder must be one this process can write: an existing file where it should be, or a
  folder without write permission, stops the tool before anything is built or read
  (:func:`check_writable`);
- one writer at a time: the folder is locked while a process writes it (:mod:`seed_core.run_lock`:
  a second process stops with one line naming the holder; a lock a killed process left is taken over);
- never overwrite a run unasked: a folder that holds a run (a checkpoint, an exported student, a
  result) is continued only with ``--resume`` and started over only with ``--overwrite``, which
  removes the run's files first; otherwise one line says both ways (:func:`check_not_overwriting`).

    with run_folder(out, "distillation", resume=args.resume, overwrite=args.overwrite,
                    holds=(CHECKPOINT_NAME, "student.pth"), removes=RUN_FILES):
        ...                                        # build, train, write
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from ..errors import UserError
from ..run_lock import run_lock

log = logging.getLogger(__name__)


class FolderNotWritable(UserError):
    """The output folder cannot be written: a file is in its place, or it (or the folder it would be
    made in) is read-only for this process."""


class RunExists(UserError):
    """The output folder holds a run that the command neither continues nor starts over."""


def _nearest_existing(folder: Path) -> Path:
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return folder


def check_writable(folder: str | Path, key: str = "the output folder") -> None:
    """A :class:`FolderNotWritable` naming ``key`` (the config key or flag that set ``folder``)
    when ``folder`` is a file, or neither it nor the nearest folder above it that exists can take a
    new file. Tried, not judged from permission bits: a read-only mount or an ACL count too."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise FolderNotWritable(f"{key}={folder} is a file, not a folder: give a folder path (or move the file)")
    existing = _nearest_existing(folder.absolute())
    if not existing.is_dir():
        raise FolderNotWritable(f"{key}={folder}: {existing} is a file, so the folder cannot be made there")
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as err:
        where = "" if existing == folder.absolute() else f" ({existing}, where it would be made)"
        raise FolderNotWritable(
            f"{key}={folder} is not writable{where}: {err.strerror or err}; give a folder you can write"
        ) from None


def check_not_overwriting(
    out: str | Path,
    *,
    resume: bool,
    overwrite: bool,
    holds: Iterable[str],
    removes: Iterable[str],
    folder_key: str = "output folder",
) -> None:
    """A folder that holds a run (one of the files ``holds``) is continued (``resume``) or started
    over (``overwrite``: the files ``removes``, names or glob patterns, are removed) only when asked; otherwise a
    :class:`RunExists` says how, naming ``folder_key`` (where another folder is given)."""
    out = Path(out)
    found = [name for name in holds if (out / name).exists()]
    if not found or resume:
        return
    removes = list(removes)
    if not overwrite:
        raise RunExists(
            f"{out} already holds a run ({', '.join(found)}): continue it with --resume, start it over "
            f"with --overwrite (removes {', '.join(removes)}), or give another {folder_key}"
        )
    for path in [path for pattern in removes for path in sorted(out.glob(pattern))]:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)
    log.warning("--overwrite: removed the run in %s; starting over", out)


@contextmanager
def run_folder(
    out: str | Path,
    tool: str,
    *,
    resume: bool,
    overwrite: bool,
    holds: Iterable[str],
    removes: Iterable[str],
    folder_key: str = "output folder",
    main: bool | None = None,
) -> Iterator[Path]:
    """``out`` checked writable, locked for this block and checked not to hold a run the command does
    not continue (see the module docstring); yields ``out`` as a Path. ``main``: whether this process
    writes the folder (default: rank 0 of the launch, read from ``RANK`` before any process group
    exists); the other ranks of a launch take no lock and check nothing."""
    out = Path(out)
    if main is None:
        main = int(os.environ.get("RANK", "0")) == 0
    if main:
        check_writable(out, folder_key)
    with run_lock(out, tool, enabled=main):
        if main:
            check_not_overwriting(
                out, resume=resume, overwrite=overwrite, holds=holds, removes=removes, folder_key=folder_key
            )
        yield out

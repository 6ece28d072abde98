"""Reading checkpoint files without running code from them.

:func:`safe_load` reads a ``torch.save`` file with ``weights_only=True`` (tensors, containers and the
few plain classes published checkpoints pickle), a ``.safetensors`` file, or a Hugging Face / timm
model folder; a file that is empty, no checkpoint at all, or cut short is refused in one line.
What the weights mean (which layout, which backbone) is :mod:`distill.checkpoints`'s business.
"""

import argparse
import json
import pickle
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .errors import CheckpointError, MissingFile


def safe_globals_allowlist() -> list:
    """The plain classes published checkpoints pickle besides tensors."""
    core = getattr(np, "_core", None) or np.core
    allowed: list = [argparse.Namespace, np.dtype]  # MoCo/DINO args, numpy dtypes
    # numpy scalars (e.g. a best accuracy); files from numpy 1.x name the module numpy.core.
    allowed += [(core.multiarray.scalar, f"{m}.multiarray.scalar") for m in ("numpy.core", "numpy._core")]
    names = ["Bool"] + [
        f"{k}{b}"
        for k, bits in (
            ("Int", (8, 16, 32, 64)),
            ("UInt", (8, 16, 32, 64)),
            ("Float", (16, 32, 64)),
            ("Complex", (64, 128)),
        )
        for b in bits
    ]
    dtypes = getattr(np, "dtypes", None)  # numpy >= 1.25
    allowed += [getattr(dtypes, f"{n}DType") for n in names if hasattr(dtypes, f"{n}DType")]
    return allowed


# How a torch.save file begins: a zip archive (torch >= 1.6) or a pickle (protocol 2+, older torch).
_TORCH_MAGIC = (b"PK\x03\x04", b"\x80")


def _check_magic(path: Path) -> None:
    """Refuse a file that is no torch.save file at all (text, an image, an empty file) before
    torch.load reads it, whose errors would suggest an unsafe unpickling instead."""
    with path.open("rb") as f:
        start = f.read(4)
    if not start:
        raise CheckpointError(f"{path} is not a checkpoint (it is empty): check the path")
    if not start.startswith(_TORCH_MAGIC):
        raise CheckpointError(
            f"{path} is not a checkpoint (it starts with {start!r}, not with the zip or pickle "
            f"header of a torch.save file): check the path"
        )


def _damaged(path: Path, err: Exception) -> CheckpointError:
    reason = str(err).split(". ")[0].strip() or type(err).__name__
    return CheckpointError(f"{path} is truncated or damaged ({reason}): copy or download it again")


@dataclass
class ModelFolder:
    """A Hugging Face or timm model folder: ``config.json`` and the weights beside it."""

    path: Path
    config: dict
    state_dict: dict[str, torch.Tensor]


# The weights of a model folder, by preference: one safetensors file, the index of sharded ones, a pickle.
_FOLDER_WEIGHTS = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin")


def model_folder_files(path) -> list[Path]:
    """The files :func:`safe_load` reads from the model folder ``path`` (config first); [] when
    ``path`` is no model folder (no ``config.json``, or no weights beside it)."""
    path = Path(path)
    if not (path / "config.json").is_file():
        return []
    for name in _FOLDER_WEIGHTS:
        if (path / name).is_file():
            if name.endswith(".index.json"):
                shards = sorted(set(json.loads((path / name).read_text()).get("weight_map", {}).values()))
                return [path / "config.json", path / name, *(path / shard for shard in shards)]
            return [path / "config.json", path / name]
    return []


def _read_model_folder(path: Path, allow_unsafe_pickle: bool, unsafe_option: str | None) -> ModelFolder:
    try:
        config = json.loads((path / "config.json").read_text())
        files = model_folder_files(path)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CheckpointError(f"{path}: config.json or the shard index is not JSON ({e})") from None
    if not files:
        raise CheckpointError(f"{path} has a config.json but none of {', '.join(_FOLDER_WEIGHTS)} beside it")
    state: dict[str, torch.Tensor] = {}
    for file in files[1:]:
        if not file.name.endswith(".index.json"):
            state.update(safe_load(file, allow_unsafe_pickle, unsafe_option))
    return ModelFolder(path, config, state)


def safe_load(path, allow_unsafe_pickle: bool = False, unsafe_option: str | None = None) -> Any:
    """Read a ``torch.save`` file (tensors, containers, argparse.Namespace, numpy scalars), a
    ``.safetensors`` file, or a model folder (:class:`ModelFolder`: ``config.json`` beside
    ``model.safetensors``, its shards, or ``pytorch_model.bin``) onto the CPU. Arbitrary classes
    are refused unless ``allow_unsafe_pickle``, which runs whatever code the file names: trusted files only.

    ``unsafe_option``: how the user of the tool at hand sets ``allow_unsafe_pickle``
    (``"teacher.allow_unsafe_pickle=true"``, ``"--allow-unsafe-pickle"``), named by a refusal;
    None where the tool has no such option (its own run files), and a refusal names none."""
    path = Path(path)
    if path.is_dir():
        if (path / "config.json").is_file():
            return _read_model_folder(path, allow_unsafe_pickle, unsafe_option)
        raise CheckpointError(
            f"{path} is a directory, not a checkpoint: give the checkpoint file itself (a Hugging Face "
            f"or timm model folder holds config.json and model.safetensors)"
        )
    if not path.is_file():
        raise MissingFile(f"checkpoint not found: {path}")
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file  # installed with timm

        try:
            return load_file(str(path), device="cpu")
        except SafetensorError as e:  # a header or size that does not add up
            raise _damaged(path, e) from None
    _check_magic(path)
    try:
        if allow_unsafe_pickle:
            return torch.load(path, map_location="cpu", weights_only=False)
        with torch.serialization.safe_globals(safe_globals_allowlist()):
            return torch.load(path, map_location="cpu", weights_only=True)
    # a zip archive cut short (PytorchStreamReader's RuntimeError, or an OSError from seeking past
    # the end: the file itself opened above), a pickle ending early
    except (RuntimeError, OSError, EOFError) as e:
        raise _damaged(path, e) from None
    except pickle.UnpicklingError as e:
        found = re.search(r"GLOBAL (\S+)", str(e))
        reason = re.search(r"WeightsUnpickler error:\s*(.+?)\s*(\n\n|$)", str(e), re.S)
        what = f"refused the class {found.group(1)!r}" if found else f"failed ({reason.group(1) if reason else e})"
        raise CheckpointError(
            f"{path}: the safe unpickler (torch.load weights_only=True) {what}. {_unsafe_hint(unsafe_option)}"
        ) from e


def _unsafe_hint(unsafe_option: str | None) -> str:
    """What a refusal of the safe unpickler suggests: the tool's own option, or the file itself."""
    if unsafe_option is None:
        return "This file should hold tensors, numbers and strings only: check that it is the file meant here."
    return f"{unsafe_option} unpickles arbitrary code: use it only for files you trust."

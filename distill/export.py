"""The student export: the input format of the transfer tools (``seed_transfer``).

    {"format": "seed-transfer/student-v1",
     "arch": "resnet18",                       # distill.models.build_backbone name
     "state_dict": {...},                      # backbone only, torchvision/timm key names, no head
     "meta": {"teacher": ..., "strategy": ..., "step": ..., "config": {...}}}

Read it back with :func:`distill.checkpoints.load_pretrained` (layout ``seed-student``).
"""

import os
from collections.abc import Callable
import tempfile
from pathlib import Path

import torch

STUDENT_FORMAT = "seed-transfer/student-v1"


def atomic_save(obj, path: str | Path, dump: Callable = torch.save) -> None:
    """``dump(obj, file)`` (``torch.save`` or ``pickle.dump``) to a temporary file beside
    ``path``, then rename: an interrupted write never leaves a truncated file where the
    last good one was."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            dump(obj, f)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def export_student(backbone: torch.nn.Module, arch: str, path: str | Path, meta: dict) -> Path:
    """Write the student ``backbone`` (no projection head) in the format above."""
    state = {k: v.detach().cpu().clone() for k, v in backbone.state_dict().items()}
    atomic_save({"format": STUDENT_FORMAT, "arch": arch, "state_dict": state, "meta": meta}, path)
    return Path(path)

"""The student export: the input format of the transfer tools (``seed_transfer``).

    {"format": "seed-transfer/student-v1",
     "arch": "resnet18",                       # distill.models.build_backbone name
     "state_dict": {...},                      # backbone only, torchvision/timm key names, no head
     "meta": {"teacher": ..., "strategy": ..., "step": ..., "config": {...}}}

Read it back with :func:`distill.checkpoints.load_pretrained` (layout ``seed-student``).
"""

import logging
from pathlib import Path

import torch

from seed_core.atomic import atomic_save

log = logging.getLogger(__name__)

STUDENT_FORMAT = "seed-transfer/student-v1"


def export_student(backbone: torch.nn.Module, arch: str, path: str | Path, meta: dict) -> Path:
    """Write the student ``backbone`` (no projection head) in the format above."""
    state = {k: v.detach().cpu().clone() for k, v in backbone.state_dict().items()}
    atomic_save({"format": STUDENT_FORMAT, "arch": arch, "state_dict": state, "meta": meta}, path)
    return Path(path)

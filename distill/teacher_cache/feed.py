"""The teacher's embeddings of a training batch, through a cache: read where written, else computed and written."""

from __future__ import annotations

import torch
import torch.nn as nn

from seed_core.runtime.precision import Precision

from .layout import CacheError
from .storage import TeacherCache


class CachedTeacher:
    """The teacher's embeddings of a batch of views through ``cache``: read when every sample
    of the batch is written there, else computed by ``teacher`` and written (a run with a
    complete cache has no teacher: ``teacher`` is None). Counts the batches of each kind."""

    def __init__(self, cache: TeacherCache, teacher: nn.Module | None):
        self.cache, self.teacher = cache, teacher
        self.read_steps = self.computed_steps = 0

    def __call__(self, epoch: int, indices: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
        """``images`` (B x 3 x H x W, on the device) are the views of ``indices`` in ``epoch``: B x C."""
        if self.cache.written(epoch, indices).all():
            self.read_steps += 1
            return self.cache.read(epoch, indices).to(images.device, non_blocking=True)
        if self.teacher is None:
            raise CacheError(
                f"{self.cache.folder}: rows of epoch {epoch} that were written when this run started "
                f"are missing now (was the folder changed during the run?); run again to complete it"
            )
        embeddings = self.cache.write(epoch, indices, self.teacher(images))  # as stored: what a reader gets
        self.computed_steps += 1
        return embeddings

    def record(self) -> dict:
        """What this run did with the cache, for the student's export meta."""
        mode = "read" if not self.computed_steps else "wrote" if not self.read_steps else "completed"
        return {
            "folder": str(self.cache.folder),
            "mode": mode,
            "read_steps": self.read_steps,
            "computed_steps": self.computed_steps,
        }


@torch.no_grad()
def teacher_output(
    teacher: nn.Module, image_size: int, device: torch.device, precision: Precision
) -> tuple[int, torch.dtype]:
    """(embed_dim, dtype) of ``teacher``'s embeddings, from one dummy batch run as the training runs it."""
    images = precision.layout(torch.zeros(2, 3, image_size, image_size, device=device))
    with precision.autocast():
        embeddings = teacher(images)
    return embeddings.shape[1], embeddings.dtype

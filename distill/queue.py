"""The FIFO queue of embeddings shared by SEED and MoCo (the set D of the paper)."""

import torch
import torch.nn as nn
import torch.nn.functional as F


class EmbeddingQueue(nn.Module):
    """K x C ring buffer of L2-normalised embeddings, oldest overwritten first.

    ``embeddings`` and ``ptr`` are registered buffers, so they travel with
    ``state_dict()`` and a resumed run continues with the exact queue. A batch
    that does not divide K wraps around the end of the buffer.
    """

    def __init__(self, size: int, dim: int):
        super().__init__()
        if size < 1 or dim < 1:
            raise ValueError(f"queue size and dim must be >= 1, got size={size}, dim={dim}")
        # Random unit vectors until real embeddings arrive, as in MoCo and SEED.
        self.register_buffer("embeddings", F.normalize(torch.randn(size, dim), dim=1))  # K x C
        self.register_buffer("ptr", torch.zeros((), dtype=torch.long))

    @property
    def size(self) -> int:
        return self.embeddings.shape[0]

    @torch.no_grad()
    def push(self, batch: torch.Tensor) -> None:
        """Write ``batch`` (B x C, B <= K) at the pointer, wrapping around the end."""
        if batch.shape[0] > self.size:
            raise ValueError(f"cannot enqueue {batch.shape[0]} embeddings into a queue of size {self.size}")
        idx = (self.ptr + torch.arange(batch.shape[0], device=batch.device)) % self.size
        self.embeddings[idx] = batch.detach().to(self.embeddings.dtype)
        self.ptr.copy_((self.ptr + batch.shape[0]) % self.size)

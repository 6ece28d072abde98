"""MoCo's shuffle-BN across processes; the identity in a single process."""

import torch
import torch.distributed as dist

from seed_core.distributed import concat_all_gather, is_distributed, rank, world_size


@torch.no_grad()
def batch_shuffle(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Give this rank a random slice of the global batch; returns (images, restore index).

    The permutation is drawn on rank 0 and broadcast. In a single process this
    returns the input unchanged (there is no other device to hide BN statistics from).
    """
    if not is_distributed():
        return images, None
    gathered = concat_all_gather(images)  # (world * N) x ...
    perm = torch.randperm(gathered.shape[0], device=images.device)
    dist.broadcast(perm, src=0)
    restore = torch.argsort(perm)
    local = perm.view(world_size(), -1)[rank()]
    return gathered[local], restore


@torch.no_grad()
def batch_unshuffle(embeddings: torch.Tensor, restore: torch.Tensor | None) -> torch.Tensor:
    """Undo :func:`batch_shuffle` on the per-rank outputs (N x C)."""
    if restore is None:
        return embeddings
    gathered = concat_all_gather(embeddings)
    local = restore.view(world_size(), -1)[rank()]
    return gathered[local]

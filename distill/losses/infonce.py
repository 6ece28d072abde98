"""InfoNCE with a queue of negatives, as in MoCo (He et al., CVPR 2020, Eq. 1)."""

import torch
import torch.nn.functional as F

from ._precision import at_least_float32


def info_nce_loss(
    query: torch.Tensor, key: torch.Tensor, queue: torch.Tensor, temperature: float = 0.2
) -> torch.Tensor:
    """-log exp(q.k+/tau) / (exp(q.k+/tau) + sum_j exp(q.d_j/tau)), mean over the batch.

    Args:
        query: N x C, L2-normalised (carries the gradient).
        key: N x C, L2-normalised positives (detached).
        queue: K x C, L2-normalised negatives.
        temperature: tau (> 0); MoCo v2 uses 0.2.
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    with torch.autocast(query.device.type, enabled=False):  # logits in float32 (see seed_loss)
        query = at_least_float32(query)
        key = key.detach().to(query.dtype)
        # logits: N x (1+K), the positive at index 0
        logits = torch.cat([(query * key).sum(dim=1, keepdim=True), query @ queue.detach().to(query.dtype).T], dim=1)
        targets = torch.zeros(logits.shape[0], dtype=torch.long, device=logits.device)
        return F.cross_entropy(logits / temperature, targets)

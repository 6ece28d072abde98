"""One optimizer step for every training loop: AMP through a grad scaler (``None`` when AMP is
off: always on the CPU), optional gradient clipping on unscaled gradients, and a loss whose
finiteness every rank checks together.

Why together: under DDP a rank that raised alone would leave the others waiting in the next
all-reduce for ever, so finiteness is and'ed over the ranks and every rank takes the same
branch. A non-finite *loss* stops the run before it touches the weights (``FloatingPointError``;
the last checkpoint is then the last good state). A non-finite *gradient* under AMP is the
scaler's to handle, as ``torch.amp`` does: it skips that optimizer step and lowers the scale.
"""

from collections.abc import Callable

import torch
import torch.distributed as dist

from .. import distributed as du
from ..errors import TrainingDiverged


def all_ranks(flag: bool, device: torch.device) -> bool:
    """``flag`` and'ed over the ranks (so that every rank takes the same branch)."""
    value = torch.tensor(float(flag), device=device)
    if du.is_distributed():
        dist.all_reduce(value, op=dist.ReduceOp.MIN)
    return bool(value.item())


def all_finite(loss: torch.Tensor) -> bool:
    """Whether ``loss`` is finite on every rank (one all-reduce under DDP)."""
    finite = torch.isfinite(loss.detach()).float()
    if du.is_distributed():
        dist.all_reduce(finite, op=dist.ReduceOp.MIN)
    return bool(finite.item())


def backward_step(
    loss: torch.Tensor, optimizer: torch.optim.Optimizer, scaler=None, clip_grads: Callable[[], None] | None = None
) -> None:
    """zero_grad, backward and step; through the AMP grad scaler when there is one.
    ``clip_grads()`` runs between backward and step, on gradients the scaler has unscaled."""
    optimizer.zero_grad(set_to_none=True)
    (scaler.scale(loss) if scaler is not None else loss).backward()
    if clip_grads is not None:
        if scaler is not None:
            scaler.unscale_(optimizer)
        clip_grads()
    if scaler is not None:
        scaler.step(optimizer)  # skipped when a gradient is inf/nan; update() then lowers the scale
        scaler.update()
    else:
        optimizer.step()


def optimizer_step(
    loss: torch.Tensor,
    optimizer: torch.optim.Optimizer,
    scaler=None,
    *,
    nonfinite: Callable[[float], str],
    clip_grads: Callable[[], None] | None = None,
) -> None:
    """:func:`backward_step` on ``loss`` once every rank found it finite; otherwise raise
    :class:`~seed_core.errors.TrainingDiverged` (a ``FloatingPointError``) whose message is
    ``nonfinite(loss value)`` (the loop says where it stopped and what to try), with the weights,
    optimizer and scaler untouched."""
    if not all_finite(loss):
        raise TrainingDiverged(nonfinite(loss.item()))
    backward_step(loss, optimizer, scaler, clip_grads)

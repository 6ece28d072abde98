"""Stateless loss functions; the modules in :mod:`distill.methods` own the state."""

from .dense import dense_distillation_loss
from .infonce import info_nce_loss
from .l2 import l2_distillation_loss
from .seed import seed_loss

__all__ = ["seed_loss", "info_nce_loss", "l2_distillation_loss", "dense_distillation_loss"]

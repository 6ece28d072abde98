"""SEED against plain self-supervised training, random init and a teacher row, on every
transfer task (:func:`~.run.run_compare`; config: :class:`~.schema.CompareConfig`)."""

from .run import run_compare
from .schema import CompareConfig, Row

__all__ = ["CompareConfig", "Row", "run_compare"]

"""SEED's ablations (teacher, tau_T, strategy, queue size) through one grid runner
(:func:`~.run.run_ablation`; config: :class:`~.schema.AblationConfig`)."""

from .run import expand_grid, run_ablation
from .schema import AblationConfig

__all__ = ["AblationConfig", "expand_grid", "run_ablation"]

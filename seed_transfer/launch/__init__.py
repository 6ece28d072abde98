"""Launching a long-running tool: in this process, under ``torchrun``, or on SLURM through
submitit with requeue-and-resume (:mod:`.config`, :mod:`.submit`, :mod:`.job`).

submitit is optional (``pip install 'seed-transfer[slurm]'``): only :mod:`.job` imports it, and
only when a job is submitted.
"""

from .config import LAUNCHERS, LauncherConfig, load_launcher_config, split_launcher_argv, split_launcher_overrides
from .submit import check, submit

__all__ = [
    "LAUNCHERS",
    "LauncherConfig",
    "check",
    "load_launcher_config",
    "split_launcher_argv",
    "split_launcher_overrides",
    "submit",
]

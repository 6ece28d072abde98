"""What every training loop sets up before its first step, the same way (:func:`start_training`),
so that a trainer's body is its own algorithm: the distillation (:mod:`distill.trainer`), the
ImageNet trainer (:mod:`seed_transfer.imagenet.trainer`), the torchvision detection engine
(:mod:`seed_transfer.detection.tv.train`).

:class:`TrainSetup` holds the device, the AMP grad scaler (``None`` when AMP is off: always on
the CPU), the checkpoint's path (:data:`CHECKPOINT_NAME` in the output folder) and the step of the
last checkpoint; and does what each trainer used to wire inline:

- ``read_checkpoint``: the training state to continue from, when resuming and one exists;
- ``wrap``: the model in ``DistributedDataParallel`` when several processes run;
- ``checkpoint_hook``: the periodic checkpoint (:class:`~.loop.PeriodicCheckpoint`), whose write
  stops with one line when the disk is full (the previous checkpoint is intact; how to continue);
- ``nonfinite_note``: where the last good checkpoint is, for a loss that is not finite: named only
  when one was written;
- ``run``: the :class:`~.loop.TrainLoop`, where Ctrl-C ends the command with one line that names
  the last checkpoint and the command that continues it (exit status 130, the shell's for an
  interrupt, so a script tells it from bad input's 2).

The output folder's own rules (writable, locked, never overwritten unasked) are
:mod:`.output_folder`'s, taken before the set-up by the function that owns the folder.
"""

from __future__ import annotations

import logging
import os
import shlex
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn as nn
from torch.nn.parallel import DistributedDataParallel

from .. import distributed as du
from ..atomic import DiskFull, remove_stale_temporaries
from ..errors import EXIT_INTERRUPTED, UserError
from .loop import PeriodicCheckpoint, TrainLoop
from .train_state import read_training_state

log = logging.getLogger(__name__)

CHECKPOINT_NAME = "checkpoint.pth"  # the training state in a run's output folder, for every trainer


class TrainingInterrupted(UserError):
    """Ctrl-C during training: the message says where the last checkpoint is and how to continue."""

    exit_status = EXIT_INTERRUPTED


def continue_command(resume: bool, argv: list[str] | None = None) -> str:
    """The command that continues this process's run: its own command line (``sys.argv``), with
    ``--resume`` added when it was not resuming and ``--overwrite`` dropped (it would start over).
    A command that resumes already (a comparison resumes its stages by itself) is the same again."""
    argv = list(sys.argv if argv is None else argv)
    program, args = argv[0], [a for a in argv[1:] if a != "--overwrite"]
    if not resume and "--resume" not in args:
        args.append("--resume")
    world = int(os.environ.get("WORLD_SIZE", "1"))
    launcher = ["torchrun", f"--nproc_per_node={world}"] if world > 1 else ["python"]
    return shlex.join([*(launcher if program.endswith(".py") else []), program, *args])


@dataclass
class TrainSetup:
    """A training run's device, AMP scaler and checkpoint (see the module docstring)."""

    out: Path
    device: torch.device
    scaler: torch.amp.GradScaler | None
    resume: bool  # the command asked to continue the run in ``out``
    checkpoint_path: Path
    saved_step: int | None = None  # the step of the checkpoint at checkpoint_path, once read or written

    @property
    def on_cuda(self) -> bool:
        return self.device.type == "cuda"

    @property
    def is_main(self) -> bool:
        return du.is_main_process()

    def read_checkpoint(self, read: Callable[[Path], dict] = read_training_state) -> dict | None:
        """The training state to continue from (``read(path)``: the runtime's reader, or a trainer's that
        also checks it continues the same run), or None: not resuming, or no checkpoint yet."""
        if not self.resume:
            return None
        if not self.checkpoint_path.exists():
            log.info("no checkpoint at %s: starting from scratch", self.checkpoint_path)
            return None
        state = read(self.checkpoint_path)
        self.saved_step = state["step"]
        return state

    def wrap(self, model: nn.Module, **ddp_kwargs) -> nn.Module:
        """``model`` in ``DistributedDataParallel`` (on this process's GPU) when several processes
        run; ``model`` itself otherwise."""
        if not du.is_distributed():
            return model
        return DistributedDataParallel(model, device_ids=[self.device.index] if self.on_cuda else None, **ddp_kwargs)

    def continue_command(self) -> str:
        return continue_command(self.resume)

    def _checkpoint_of_this_run(self) -> bool:
        """Whether ``checkpoint_path`` holds a checkpoint this run read (to resume) or wrote."""
        return self.saved_step is not None and self.checkpoint_path.exists()

    def last_checkpoint(self) -> str:
        """Where the run can continue from, truthfully: the checkpoint and its step, or that there is none."""
        if self._checkpoint_of_this_run():
            return f"the last checkpoint is {self.checkpoint_path} (step {self.saved_step})"
        if self.checkpoint_path.exists():
            return f"no checkpoint was written by this run yet ({self.checkpoint_path} is an earlier run's)"
        return f"no checkpoint was written yet ({self.checkpoint_path} does not exist)"

    def nonfinite_note(self) -> str:
        """For a loss that is not finite: the last good checkpoint, named only when this run has one."""
        if self._checkpoint_of_this_run():
            return f"the last good checkpoint is {self.checkpoint_path}, step {self.saved_step}"
        return "no checkpoint was written before it"

    def save(self, step: int, write: Callable[[Path], None]) -> None:
        """``write(checkpoint_path)`` for ``step``; a full disk (or the file-size limit) ends the run with one line."""
        try:
            write(self.checkpoint_path)
        except DiskFull as err:
            at = f", step {self.saved_step}" if self.saved_step is not None else ""
            before = (
                f"the previous one is intact ({self.checkpoint_path}{at})"
                if self.checkpoint_path.exists()
                else "there is no earlier one"
            )
            raise DiskFull(
                self.checkpoint_path,
                message=f"{err.problem}: the checkpoint of step {step} was not written and {before}; {err.fix}, "
                f"then continue with: {self.continue_command()}",
                too_big=err.too_big,
            ) from err.__cause__
        self.saved_step = step

    def checkpoint_hook(
        self, write: Callable[[Path, int], None], period: int, also: Callable[[int], bool] | None = None
    ) -> PeriodicCheckpoint:
        """The periodic checkpoint: ``write(path, step)`` every ``period`` steps, at the end, and where
        ``also(step)`` holds (:class:`~.loop.PeriodicCheckpoint`), through :meth:`save`."""
        return PeriodicCheckpoint(lambda step: self.save(step, lambda path: write(path, step)), period, also)

    def run(self, loop: TrainLoop, batches: Iterable) -> int:
        """``loop.run(batches)``; Ctrl-C becomes a :class:`TrainingInterrupted` (no traceback: the
        state on disk is the last checkpoint's, and the message says how to continue from it)."""
        try:
            return loop.run(batches)
        except KeyboardInterrupt:
            raise TrainingInterrupted(
                f"interrupted (Ctrl-C) during step {loop.step + 1} of {loop.stop}: {self.last_checkpoint()}; "
                f"continue with: {self.continue_command()}"
            ) from None


def start_training(
    out: str | Path,
    *,
    amp: bool,
    resume: bool,
    device: torch.device | None = None,
    temporaries: Iterable[str | Path] = (),
) -> TrainSetup:
    """The set-up of a training run writing ``out``: ``device`` (default: this process's, from the
    launch: :func:`seed_core.distributed.init_from_env`), the AMP scaler (``amp`` on CUDA), and, on
    the main process, the temporaries that a save killed midway left beside the checkpoint and
    ``temporaries`` removed. The folder must be this process's alone (:mod:`.output_folder`'s lock)."""
    out = Path(out)
    device = du.init_from_env() if device is None else device
    scaler = torch.amp.GradScaler("cuda") if device.type == "cuda" and amp else None
    setup = TrainSetup(out, device, scaler, resume, out / CHECKPOINT_NAME)
    if setup.is_main:
        remove_stale_temporaries(setup.checkpoint_path, *temporaries)
    return setup

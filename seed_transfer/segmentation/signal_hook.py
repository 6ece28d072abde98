"""An MMEngine hook that checkpoints at SLURM's signal, as the project's own loop does.

In a submitit job, SLURM's pre-timeout / preemption signal (USR2) is held until the iteration that is
running has ended; then that iteration's checkpoint is saved (``iter_<n>.pth``, named by
``last_checkpoint``, what MMEngine's resume reads) and the signal goes to submitit's handler, which
requeues the job with ``--resume``: the requeued seed continues from the iteration the signal
interrupted instead of from the last periodic checkpoint (:mod:`seed_core.runtime.preemption`).
Outside a submitit job nothing changes.
"""

from pathlib import Path

from mmengine.dist import is_main_process
from mmengine.hooks import Hook

from seed_core.runtime import preemption


class CheckpointAtSignal(Hook):
    priority = "VERY_LOW"  # after MMEngine's own checkpoint and logger hooks

    def before_train(self, runner) -> None:
        preemption.install()

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        if preemption.pending() is None:
            return
        name = f"iter_{runner.iter + 1}.pth"  # MMEngine's name for the state after this iteration
        runner.save_checkpoint(runner.work_dir, name, by_epoch=False)
        if is_main_process():
            (Path(runner.work_dir) / "last_checkpoint").write_text(str(Path(runner.work_dir) / name))
        runner.logger.warning(f"checkpoint {name} saved on the signal: handing over to the requeue")
        preemption.hand_over()

    def after_train(self, runner) -> None:
        preemption.uninstall()

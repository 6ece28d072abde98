"""A command line as a submitit job that requeues itself with ``--resume`` when SLURM preempts
it or its time runs out (submitit's checkpointing protocol).

SLURM sends the job ``USR2`` ``signal_delay_s`` before its time limit, and on preemption;
submitit's handler (in global rank 0) calls :meth:`CommandJob.checkpoint`, pickles the job it
returns over the submitted one and requeues the job (``scontrol requeue``; the local executor
restarts the tasks). The requeued job runs the same command with ``--resume``: every training in
the project continues bit-exactly from its last periodic checkpoint (``train.checkpoint_every``
and friends), so what ran after that checkpoint runs again and the result is the same as an
uninterrupted run's. Requeues are counted in the job itself and bounded by ``max_requeues``.
"""

import logging
import shlex
from collections.abc import Callable

import submitit

from .command import fn_name, resolve

log = logging.getLogger(__name__)
RESUME_FLAG = "--resume"


class CommandJob(submitit.helpers.Checkpointable):
    """``fn(argv)`` as one task of a job; ``fn`` returns an exit status (a tool's ``main``).

    ``fn``: ``"package.module:function"`` (imported in the job, so nothing but strings is
    pickled) or a callable that pickles. With several tasks (``nodes`` x ``tasks_per_node``),
    each task gets the variables ``torchrun`` would set (``RANK``, ``LOCAL_RANK``,
    ``WORLD_SIZE``, ``MASTER_ADDR``/``MASTER_PORT``) before ``fn`` runs, so
    :func:`seed_core.distributed.init_from_env` joins them into one process group.
    ``requeues``: how many times this job has requeued itself so far. ``threads``: torch's intra-op
    threads in each task (``launcher.cpus_per_task``; ``None``: torch's default, every core).
    """

    def __init__(
        self, fn: str | Callable, argv: list[str], max_requeues: int, requeues: int = 0, threads: int | None = None
    ):
        self.fn, self.argv, self.max_requeues, self.requeues = fn, list(argv), max_requeues, requeues
        self.threads = threads

    def __call__(self) -> int:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
        if self.threads:  # the task's CPUs (launcher.cpus_per_task), not every core of the node: parallel
            import torch  # jobs on one machine would otherwise oversubscribe it many times over

            torch.set_num_threads(self.threads)
        env = submitit.JobEnvironment()
        if env.num_tasks > 1:  # devices: seed_core.distributed picks cuda:LOCAL_RANK of those visible
            submitit.helpers.TorchDistributedEnvironment().export(set_cuda_visible_devices=False)
        log.info(
            "job %s task %d of %d (node %d of %d), requeued %d of at most %d times: %s %s",
            env.job_id,
            env.global_rank,
            env.num_tasks,
            env.node,
            env.num_nodes,
            self.requeues,
            self.max_requeues,
            fn_name(self.fn),
            shlex.join(self.argv),
        )
        status = resolve(self.fn)(self.argv)
        if status:  # a UserError has printed its one line already
            raise RuntimeError(
                f"{fn_name(self.fn)} exited with status {status} (job {env.job_id}, log: {env.paths.stderr})"
            )
        return 0 if status is None else status

    def checkpoint(self, *args, **kwargs) -> submitit.helpers.DelayedSubmission | None:
        """The job to requeue: the same command with ``--resume``; ``None`` (not requeued, the job
        fails) once it has requeued ``max_requeues`` times."""
        if self.requeues >= self.max_requeues:
            log.error(
                "not requeued: the job has requeued %d times (launcher.max_requeues); continue it "
                "by submitting the same command with %s",
                self.requeues,
                RESUME_FLAG,
            )
            return None
        argv = self.argv if RESUME_FLAG in self.argv else [*self.argv, RESUME_FLAG]
        log.warning(
            "preempted or out of time: requeued (%d of at most %d) as %s %s",
            self.requeues + 1,
            self.max_requeues,
            fn_name(self.fn),
            shlex.join(argv),
        )
        return submitit.helpers.DelayedSubmission(
            CommandJob(self.fn, argv, self.max_requeues, self.requeues + 1, self.threads)
        )

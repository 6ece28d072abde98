"""Run a command where :class:`~seed_transfer.launch.config.LauncherConfig` says: here, on this
machine's GPUs through ``torchrun``, or as a SLURM job through submitit.

    job = submit("seed_transfer.cli.distill:main", ["--config", ...], cfg, output_dir)

Everything a SLURM job needs is checked before anything is submitted (:func:`check`): submitit
installed, ``sbatch`` on PATH, a resource request that the executor can take.
"""

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from seed_core.config import ConfigError
from seed_core.errors import UserError

from .command import fn_name, resolve
from .config import LauncherConfig

SUBMITIT_FOLDER = "submitit"  # under the run's output folder: pickles, stdout/stderr of every task
ENTRY_MODULE = "seed_transfer.launch"  # python -m seed_transfer.launch package.module:function ARGS


def check(cfg: LauncherConfig) -> None:
    """Raise a :class:`~seed_core.errors.UserError` naming the fix if ``cfg`` cannot launch here."""
    if cfg.launcher == "torchrun" and cfg.nodes != 1 and "WORLD_SIZE" not in os.environ:
        raise ConfigError(
            f"launcher: torchrun starts one node from here (launcher.nodes={cfg.nodes}): on each node "
            f"run torchrun --nnodes {cfg.nodes} --node_rank <i> --nproc_per_node {cfg.tasks} "
            f"--master_addr <node 0> --master_port <port> -m {ENTRY_MODULE} <package.module:main> "
            f"<arguments> (or use --launcher slurm)"
        )
    if cfg.launcher != "slurm":
        return
    try:
        import submitit  # noqa: F401
    except ImportError:
        raise UserError(
            "launcher: slurm needs submitit: pip install 'seed-transfer[slurm]' (or pip install 'submitit>=1.5')"
        ) from None
    if cfg.executor == "slurm" and shutil.which("sbatch") is None:
        raise UserError(
            "launcher: slurm needs SLURM, and this machine has no sbatch on PATH: submit from a "
            "SLURM login node, or run here with --launcher local (or torchrun, or "
            "launcher.executor=local for submitit's local processes)"
        )
    if cfg.executor != "slurm" and cfg.nodes != 1:
        raise ConfigError(
            f"launcher.executor={cfg.executor} runs on this machine only: launcher.nodes must be 1, got {cfg.nodes}"
        )


def slurm_executor(cfg: LauncherConfig, folder: Path, name: str):
    """submitit's executor for ``cfg``: one task per GPU on each node, logs under ``folder``."""
    import submitit

    executor = submitit.AutoExecutor(
        folder=folder,
        cluster=cfg.executor,
        slurm_max_num_timeout=cfg.max_requeues,
        local_max_num_timeout=cfg.max_requeues,
    )
    gpus = {"gpus_per_node": cfg.gpus_per_node} if cfg.gpus_per_node else {}  # none asked: CPU partitions
    executor.update_parameters(
        name=name,
        nodes=cfg.nodes,
        tasks_per_node=cfg.tasks,
        **gpus,
        cpus_per_task=cfg.cpus_per_task,
        mem_gb=cfg.mem_gb,
        timeout_min=cfg.time_min,
        slurm_partition=cfg.partition,
        slurm_account=cfg.account,
        slurm_qos=cfg.qos,
        slurm_signal_delay_s=cfg.signal_delay_s,
    )
    return executor


def submit(
    fn: str | Callable, argv: list[str], cfg: LauncherConfig, output_dir: str | Path, after: list[str] | None = None
) -> Any:
    """Run ``fn(argv)`` (``fn``: ``"package.module:function"``, a tool's ``main``) as ``cfg`` says.

    - ``local``: here; returns what ``fn`` returns (the exit status);
    - ``torchrun``: ``tasks`` processes of ``python -m torch.distributed.run --standalone``
      (``fn`` must be a ``"package.module:function"`` string); returns their exit status;
    - ``slurm``: submits one job (:class:`~seed_transfer.launch.job.CommandJob`) with its folder
      at ``<output_dir>/submitit``, prints its id and log paths, and returns the submitit job
      without waiting (``job.result()`` waits).

    ``argv`` must not hold the launcher's own options: the job runs ``fn(argv)`` as given. ``after``:
    SLURM job ids that must end well first (``--dependency=afterok``; a failed one cancels this job).
    """
    check(cfg)
    argv = list(argv)
    if cfg.launcher == "local":
        return resolve(fn)(argv)
    if cfg.launcher == "torchrun":
        return _torchrun(fn, argv, cfg)
    import submitit

    from .job import CommandJob  # imports submitit

    name = cfg.job_name or fn_name(fn).rpartition(":")[0].rpartition(".")[2]
    executor = slurm_executor(cfg, Path(output_dir) / SUBMITIT_FOLDER, name)
    if after:
        dependency = {"dependency": "afterok:" + ":".join(after), "kill_on_invalid_dep": "yes"}
        executor.update_parameters(slurm_additional_parameters=dependency)
    try:
        job = executor.submit(CommandJob(fn, argv, cfg.max_requeues, threads=cfg.cpus_per_task))
    except submitit.core.utils.FailedJobError as err:  # sbatch refused the request
        raise UserError(refusal_line(str(err), cfg)) from None
    where = "SLURM" if cfg.executor == "slurm" else f"submitit's {cfg.executor} executor"
    print(
        f"submitted job {job.job_id} ({name}, {cfg.nodes} node(s) x {cfg.tasks} process(es)) to {where}"
        + (f", after job(s) {', '.join(after)}" if after else "")
        + "\n"
        f"  follow: tail -f {job.paths.stdout} {job.paths.stderr}"
        + (" (task 0; one pair of files per task)" if cfg.world_size > 1 else "")
        + (f"\n  status: squeue -j {job.job_id}   cancel: scancel {job.job_id}" if cfg.executor == "slurm" else ""),
        flush=True,
    )
    return job


# sbatch's complaint -> the launcher keys that set what it complains about
REFUSAL_KEYS = {
    "gres": "launcher.gpus_per_node (leave it out on a CPU partition)",
    "partition": "launcher.partition",
    "time limit": "launcher.time_min",
    "memory": "launcher.mem_gb",
    "account": "launcher.account",
    "qos": "launcher.qos",
    "node count": "launcher.nodes",
    "cpu count": "launcher.cpus_per_task or launcher.tasks_per_node",
}


def refusal_line(stderr: str, cfg: LauncherConfig) -> str:
    """One line for a job that ``sbatch`` refused: its own message and the launcher key to change."""
    message = next((ln.strip() for ln in stderr.splitlines() if "error" in ln.lower()), stderr.strip()[:300])
    keys = [key for word, key in REFUSAL_KEYS.items() if word in message.lower()]
    hint = keys[0] if keys else "the launcher.<key>=value settings (partition, gpus_per_node, time_min, mem_gb)"
    return (
        f"SLURM refused the job ({message}): change {hint}; asked for {cfg.nodes} node(s) x {cfg.tasks} task(s)"
        + (f", {cfg.gpus_per_node} GPU(s) per node" if cfg.gpus_per_node else ", no GPU")
        + (f", partition {cfg.partition}" if cfg.partition else "")
    )


def _torchrun(fn: str | Callable, argv: list[str], cfg: LauncherConfig) -> int:
    if "WORLD_SIZE" in os.environ:  # already one rank of a torchrun launch
        return resolve(fn)(argv)
    if not isinstance(fn, str):
        raise TypeError("launcher: torchrun runs a 'package.module:function' string, not a callable")
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc_per_node={cfg.tasks}",
        "-m",
        ENTRY_MODULE,
        fn,
        *argv,
    ]
    print(f"launching: {' '.join(cmd)}", flush=True)
    return subprocess.run(cmd).returncode

"""Where a long-running tool runs: :class:`LauncherConfig`, read from ``--launcher`` and the
``launcher.<key>=value`` overrides of a tool's command line.

    tools/distill.py --config ... --launcher slurm launcher.nodes=2 launcher.gpus_per_node=8 \
        launcher.partition=learnlab launcher.time_min=4320 data.root=...

- ``local``: in this process (the default; under ``torchrun`` every rank runs it this way);
- ``torchrun``: ``tasks_per_node`` (default: ``gpus_per_node``, else 1) processes on this machine
  through ``torch.distributed.run`` (one node; for several, start ``torchrun --nnodes`` on each
  node yourself, see the README);
- ``slurm``: a SLURM job through submitit, ``nodes`` x ``tasks_per_node`` tasks (one per GPU when
  ``gpus_per_node`` asks for GPUs; without it no GPU is asked, so CPU partitions take it),
  requeued with ``--resume`` on SLURM's pre-timeout or preemption signal, at most
  ``max_requeues`` times. ``executor: local`` runs the same job as local processes through
  submitit (a workstation, the tests); ``debug`` runs it in this process.
"""

from dataclasses import dataclass, fields
from typing import ClassVar

from seed_core.config import ConfigError, from_dict, parse_overrides
from seed_core.value_ranges import above, at_least, check_values

LAUNCHERS = ("local", "torchrun", "slurm")
EXECUTORS = ("slurm", "local", "debug")  # submitit's clusters that launcher: slurm may use
PREFIX = "launcher."
DAG_KEYS = ("max_jobs", "wait")  # keys of the command line's launcher that a DAG reads, not a job


@dataclass
class LauncherConfig:
    RANGES: ClassVar = {
        "nodes": at_least(1),
        "gpus_per_node": at_least(1),
        "tasks_per_node": at_least(1),
        "cpus_per_task": at_least(1),
        "mem_gb": above(0),
        "time_min": at_least(1),
        "max_requeues": at_least(0),
        "signal_delay_s": at_least(0),
        "max_jobs": at_least(1),
    }
    launcher: str = "local"  # local | torchrun | slurm
    nodes: int = 1  # machines of the job (slurm); torchrun here runs one
    # GPUs asked of SLURM per node (sbatch --gpus-per-node), one process (task) each; null: no GPU is
    # asked, so a CPU partition takes the job (one task per node unless tasks_per_node says otherwise)
    gpus_per_node: int | None = None
    tasks_per_node: int | None = None  # processes per node; null: one per GPU (gpus_per_node), else 1
    cpus_per_task: int = 8  # CPUs of each process: its data-loading workers and itself
    mem_gb: float | None = None  # memory per node; None: the partition's default
    partition: str | None = None  # SLURM partition (sbatch --partition)
    account: str | None = None  # SLURM account to charge (sbatch --account)
    qos: str | None = None  # SLURM quality of service (sbatch --qos)
    time_min: int = 4320  # wall-clock limit of one job (3 days); a longer run requeues itself
    job_name: str | None = None  # None: the tool's name
    max_requeues: int = 3  # preemptions + timeouts a job may requeue itself after, then it fails
    signal_delay_s: int = 120  # SLURM sends its pre-timeout signal (USR2) this long before the limit
    executor: str = "slurm"  # slurm | local (submitit's local processes) | debug (in this process)
    # a pipeline's DAG of jobs (compare, ablate): at most this many of its jobs submitted at once
    # (None: every job that is ready). On a workstation (executor: local) it keeps the cores from
    # being oversubscribed; on SLURM it caps the share of the queue a DAG takes
    max_jobs: int | None = None
    # a pipeline's DAG: true, this process submits each job when its dependencies are done and waits
    # for all; false, every job is submitted at once, chained by SLURM dependencies, with the report
    # as the last job, and the command returns (executor: slurm only, no max_jobs); null: false on SLURM
    # without max_jobs, else true
    wait: bool | None = None

    def validate(self) -> None:
        check_values(self, PREFIX)  # RANGES: every number in range, finite
        if self.launcher not in LAUNCHERS:
            raise ConfigError(f"launcher.launcher: {self.launcher!r} is not one of {', '.join(LAUNCHERS)}")
        if self.executor not in EXECUTORS:
            raise ConfigError(f"launcher.executor: {self.executor!r} is not one of {', '.join(EXECUTORS)}")
        if self.wait is False and self.executor != "slurm":
            raise ConfigError(
                f"launcher.wait=false chains the jobs with SLURM dependencies, which launcher.executor={self.executor} "
                "does not have: use launcher.executor=slurm, or leave launcher.wait out"
            )
        if self.wait is False and self.max_jobs is not None:
            raise ConfigError(
                "launcher.max_jobs caps the jobs that a waiting command has submitted at once; a chained graph "
                "(launcher.wait=false) is submitted whole: leave one of the two out"
            )
        if self.signal_delay_s >= 60 * self.time_min:
            raise ConfigError(f"launcher.signal_delay_s must lie in [0, time_min * 60), got {self.signal_delay_s}")

    @property
    def tasks(self) -> int:
        """Processes per node: ``tasks_per_node``, else one per GPU, else 1."""
        return self.tasks_per_node or self.gpus_per_node or 1

    @property
    def world_size(self) -> int:
        return self.nodes * self.tasks

    @property
    def waits(self) -> bool:
        """Whether a pipeline's DAG is waited on here (``wait``; by default off SLURM, or to honour ``max_jobs``)."""
        return self.wait if self.wait is not None else (self.executor != "slurm" or self.max_jobs is not None)


# one line per key, for every launchable tool's --help (launcher_help); a test keeps it complete
KEY_HELP = {
    "launcher": "local (here) | torchrun (this machine's GPUs) | slurm (a SLURM job through submitit)",
    "nodes": "machines of the job (slurm)",
    "gpus_per_node": "GPUs asked per node, one task each; leave it out on a CPU partition",
    "tasks_per_node": "processes per node (default: one per GPU, else 1)",
    "cpus_per_task": "CPUs (and torch threads) of each process",
    "mem_gb": "memory per node (default: the partition's)",
    "partition": "SLURM partition",
    "account": "SLURM account",
    "qos": "SLURM quality of service",
    "time_min": "wall-clock limit of one job; a longer run requeues itself",
    "job_name": "default: the tool's name",
    "max_requeues": "preemptions + timeouts a job may requeue itself after, then it fails",
    "signal_delay_s": "SLURM's pre-timeout signal (USR2) comes this long before the limit",
    "executor": "slurm | local (submitit's local processes) | debug (in this process)",
    "max_jobs": "a pipeline's DAG (compare, ablate): at most this many jobs at once",
    "wait": "a pipeline's DAG: wait here (true), or chain its jobs in SLURM and return (false: SLURM's default)",
}


def launcher_help() -> str:
    """The launcher section of a launchable tool's ``--help``: the flag and every ``launcher.<key>``."""
    defaults = LauncherConfig()
    lines = [
        "launcher (where the run runs; --launcher local|torchrun|slurm, then launcher.<key>=value):",
        "  python tools/<tool>.py --config ... --launcher slurm launcher.partition=<p> launcher.time_min=4320",
    ]
    for f in fields(LauncherConfig):
        if f.name != "launcher":
            value = getattr(defaults, f.name)
            lines.append(
                f"  launcher.{f.name}={'null' if value is None else value}".ljust(34) + f"  {KEY_HELP[f.name]}"
            )
    return "\n".join(lines)


def check_launcher_keys(keys: dict, where: str) -> None:
    """Refuse a mapping of launcher keys (a pipeline's ``jobs.<stage>``) that names an unknown one."""
    known = {f.name for f in fields(LauncherConfig)} - {"launcher", *DAG_KEYS}
    dag_wide = sorted(set(keys) & set(DAG_KEYS))
    if dag_wide:
        raise ConfigError(
            f"{where}: {', '.join(dag_wide)} is the whole DAG's, not one stage's: give it on the command "
            f"line as launcher.{dag_wide[0]}=N"
        )
    bad = sorted(set(keys) - known)
    if bad:
        raise ConfigError(f"{where}: unknown launcher keys {bad}; choose from {', '.join(sorted(known))}")


def split_launcher_overrides(overrides: list[str]) -> tuple[list[str], list[str]]:
    """``overrides`` -> (the ``launcher.<key>=value`` ones without their prefix, the rest in order)."""
    ours = [item[len(PREFIX) :] for item in overrides if item.startswith(PREFIX)]
    return ours, [item for item in overrides if not item.startswith(PREFIX)]


def load_launcher_config(launcher: str | None = None, overrides: list[str] = ()) -> LauncherConfig:
    """Defaults, then ``launcher.<key>=value`` overrides (prefix already removed), then the
    ``--launcher`` flag (``None``: not given)."""
    data = parse_overrides(list(overrides))
    if launcher is not None:
        data["launcher"] = launcher
    cfg = from_dict(LauncherConfig, data, prefix=PREFIX)
    cfg.validate()
    return cfg


def split_launcher_argv(argv: list[str]) -> tuple[LauncherConfig | None, list[str]]:
    """A tool's command line -> (its launcher, or ``None`` when it names none; the command line
    without ``--launcher X`` / ``--launcher=X`` and the ``launcher.<key>=value`` overrides), so
    the job runs the rest as given::

        cfg, rest = split_launcher_argv(sys.argv[1:])
        if cfg is not None and cfg.launcher != "local":
            submit("seed_transfer.cli.distill:main", rest, cfg, output_dir)
    """
    flag, rest, items = None, [], iter(argv)
    for item in items:
        if item == "--launcher":
            flag = next(items, None)
            if flag is None:
                raise ConfigError(f"--launcher needs a value: one of {', '.join(LAUNCHERS)}")
        elif item.startswith("--launcher="):
            flag = item.partition("=")[2]
        else:
            rest.append(item)
    ours, rest = split_launcher_overrides(rest)
    if flag is None and not ours:
        return None, rest
    return load_launcher_config(flag, ours), rest

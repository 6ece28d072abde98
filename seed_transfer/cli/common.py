"""What every command line shares: one argument parser builder and :func:`run_cli`.

A tool's ``main(argv=None) -> int`` builds its parser with :func:`build_parser`, parses, and
hands the work to :func:`run_cli`::

    def main(argv=None) -> int:
        parser = build_parser(__doc__, config="YAML file under configs/distill/", resume="...")
        args = parser.parse_args(argv)
        return run_cli(_run, args)

:func:`run_cli` is the only place where an exception becomes an exit status: a
:class:`~seed_core.errors.UserError` (bad input, raised where the input is found to be bad) is
printed as one line ``error: <message>`` with status 2; every other exception is a bug and
propagates with its traceback.

:func:`launchable` gives a long-running tool's ``main`` the launcher options of
:mod:`seed_transfer.launch` (``--launcher local|torchrun|slurm`` and ``launcher.<key>=value``):
``local`` (the default) runs here, ``torchrun`` on this machine's GPUs, ``slurm`` submits a job
whose submitit folder (logs of every task) is ``<the run's output folder>/submitit``.
"""

import argparse
import functools
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from seed_core.errors import EXIT_INTERRUPTED, UserError, report_user_error

LOG_FORMAT = "%(asctime)s %(name)s: %(message)s"
OVERWRITE_HELP = "start over in an output folder that holds a run (removes its checkpoint and results first)"


def build_parser(
    doc: str | None, *, config: str | None = None, overrides: str | None = None, resume: str | None = None
) -> argparse.ArgumentParser:
    """A parser whose ``--help`` is ``doc`` as written (usage examples keep their layout).

    ``config``: help of a required ``--config`` (the tool reads a YAML config); ``overrides``:
    help of the trailing ``key=value`` config overrides (stored as ``args.overrides``);
    ``resume``: help of ``--resume`` (for tools that continue an interrupted run). ``None``
    leaves the argument out. Tool-specific arguments are added to the returned parser.
    """
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    if config is not None:
        parser.add_argument("--config", required=True, help=config)
    if resume is not None:
        parser.add_argument("--resume", action="store_true", help=resume)
    if overrides is not None:
        parser.add_argument("overrides", nargs="*", help=overrides)
    return parser


def run_cli(fn: Callable[..., int | None], *args: Any, **kwargs: Any) -> int:
    """Run ``fn(*args, **kwargs)`` as a command: its return value (``None`` reads as 0) is the exit status.

    Logging goes to stderr at INFO. A :class:`~seed_core.errors.UserError` ends the command with
    one line on stderr and status 2 (:func:`~seed_core.errors.report_user_error`; 130 for a training
    Ctrl-C ended, whose line says how to continue it, and for Ctrl-C anywhere else); nothing else is
    caught, so a bug keeps its traceback (and Python's exit status 1).
    """
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT)
    try:
        status = fn(*args, **kwargs)
    except UserError as err:
        return report_user_error(err)
    except KeyboardInterrupt:  # outside a training loop (which says where its checkpoint is): nothing to continue
        print("error: interrupted (Ctrl-C)", file=sys.stderr)
        return EXIT_INTERRUPTED
    return 0 if status is None else int(status)


def launchable(
    tool: str, config_cls: type | None = None, output_key: str = "output_dir", dag: Callable[..., int] | None = None
):
    """Decorate ``seed_transfer.cli.<tool>.main`` with the launcher options; without them ``main``
    runs as before. ``config_cls`` and ``output_key`` (a dotted key, e.g. ``train.output_dir``)
    name the run's output folder, which holds the job's submitit folder; a tool without one
    (its folder is a run key) uses ``outputs/<tool>``. ``dag(launcher_cfg, argv)``: what
    ``launcher: slurm`` does instead of submitting the tool as one job (a pipeline whose stages
    become jobs of their own, e.g. the comparison)."""

    def wrap(main: Callable[..., int]) -> Callable[..., int]:
        @functools.wraps(main)
        def launching_main(argv=None) -> int:
            given = sys.argv[1:] if argv is None else list(argv)
            if any(a in ("-h", "--help") for a in given):  # the tool's help, then the launcher's
                from ..launch.config import launcher_help

                try:
                    return main(argv)
                finally:
                    print("\n" + launcher_help())
            if not any(a == "--launcher" or a.startswith(("--launcher=", "launcher.")) for a in given):
                return main(argv)  # as typed (None: sys.argv), e.g. for the command line a report records
            return run_cli(_launch, tool, given, main, config_cls, output_key, dag)

        return launching_main

    return wrap


def _launch(tool: str, argv: list[str], main: Callable[..., int], config_cls, output_key: str, dag=None) -> int:
    from ..launch.config import split_launcher_argv
    from ..launch.submit import submit

    cfg, rest = split_launcher_argv(argv)
    if cfg.launcher == "local":
        return main(rest)
    if cfg.launcher == "slurm" and dag is not None:
        return dag(cfg, rest)
    result = submit(f"seed_transfer.cli.{tool}:main", rest, cfg, run_folder(tool, rest, config_cls, output_key))
    return result if isinstance(result, int) else 0  # a submitted SLURM job: its id and logs are printed


def run_folder(tool: str, argv: list[str], config_cls, output_key: str) -> Path:
    """The output folder of the run ``argv`` asks for (its ``--config`` and ``key=value`` overrides)."""
    from seed_core.config import load_config

    from ..pipelines.stages import config_path

    config = next((a.partition("=")[2] for a in argv if a.startswith("--config=")), None)
    if "--config" in argv[:-1]:
        config = argv[argv.index("--config") + 1]
    if config_cls is None or config is None:
        return Path("outputs") / tool
    overrides = [a for a in argv if "=" in a and not a.startswith("-")]
    value = load_config(config_cls, config_path(config), overrides)
    for part in output_key.split("."):
        value = getattr(value, part)
    return Path(value)


def print_chained(result: dict) -> int:
    """What a pipeline's chained job graph (``--launcher slurm``) did: its jobs by state, where the report comes."""
    counts = ", ".join(f"{len(names)} {what}" for what, names in result["chained"].items() if names)
    print(
        f"jobs: {counts}; the last job writes {result['report']}. Follow with squeue; run this command again "
        "to see where the graph stands (nothing is submitted twice; failed jobs are resubmitted with their dependents)"
    )
    return 0

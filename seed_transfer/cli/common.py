"""What every command line shares: one argument parser builder and :func:`run_cli`.

A tool's ``main(argv=None) -> int`` builds its parser with :func:`build_parser`, parses, and
hands the work to :func:`run_cli`::

    def main(argv=None) -> int:
        parser = build_parser(__doc__, config="YAML file under configs/distill/", resume="...")
        args = parser.parse_args(argv)
        return run_cli(_run, args)

:func:`run_cli` is the only place where an exception becomes an exit status: a
:class:`~distill.errors.UserError` (bad input, raised where the input is found to be bad) is
printed as one line ``error: <message>`` with status 2; every other exception is a bug and
propagates with its traceback.
"""

import argparse
import logging
from collections.abc import Callable
from typing import Any

from distill.errors import UserError, report_user_error

LOG_FORMAT = "%(asctime)s %(name)s: %(message)s"


def build_parser(doc: str | None, *, config: str | None = None, overrides: str | None = None,
                 resume: str | None = None) -> argparse.ArgumentParser:
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

    Logging goes to stderr at INFO. A :class:`~distill.errors.UserError` ends the command with
    one line on stderr and status 2 (:func:`~distill.errors.report_user_error`); nothing else is
    caught, so a bug keeps its traceback (and Python's exit status 1).
    """
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT)
    try:
        status = fn(*args, **kwargs)
    except UserError as err:
        return report_user_error(err)
    return 0 if status is None else int(status)

"""The one kind of error a user can fix, and how every tool reports it.

A :class:`UserError` says what input is wrong (a config key or value, a file, a folder) and
what to do about it. The tools print it as one line, ``error: <message>``, and exit with
status 2; any other exception is a bug and keeps its traceback. :class:`ConfigError` (also
importable from :mod:`seed_core.config`), :class:`CheckpointError`, :class:`DataError`,
:class:`MissingFile` and :class:`MissingDependency` are user errors. Code that finds bad input
raises one of these where it finds it, so the command lines (``seed_transfer.cli.common.run_cli``)
catch :class:`UserError` alone: a plain ``ValueError``, ``OSError`` or ``ImportError`` is a bug.
A full disk (:class:`seed_core.atomic.DiskFull`) is a user error too, and so is Ctrl-C during a
training loop (:class:`seed_core.runtime.TrainingInterrupted`, whose exit status is 130, the shell's).
"""

import sys


class UserError(Exception):
    """Input that cannot be used; the message names it and the fix."""


class ConfigError(UserError, ValueError):
    """A config file, key or value that cannot be used; the message says which and why."""


class CheckpointError(UserError, ValueError):
    """A checkpoint that cannot be read, recognised, or loaded into the requested model."""


class DataError(UserError, ValueError):
    """An image source that cannot be trained on: no images, unreadable files, too few for a batch."""


class MissingFile(UserError, FileNotFoundError):
    """A file or folder the input names (a config value, a dataset's layout) that is not there."""


class TrainingDiverged(UserError, FloatingPointError):
    """The loss became NaN or inf: the message says at which step, what was kept and what to try (a
    setting to change, not a bug to report; still a ``FloatingPointError`` for code that catches one)."""


class MissingDependency(UserError, ImportError):
    """An optional package a feature needs is not installed; the message says how to install it."""


EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130  # 128 + SIGINT: what a shell reports for a command Ctrl-C ended


def user_message(err: BaseException) -> str:
    """The message of ``err``. One raised in a DataLoader worker reaches the main process with
    torch's ``Caught <Error> in DataLoader worker process N. Original Traceback ...`` around it,
    the message after the traceback: that message alone."""
    text = str(err)
    qualified = f"\n{type(err).__module__}.{type(err).__qualname__}: "
    if text.startswith(f"Caught {type(err).__name__} in DataLoader worker") and qualified in text:
        text = text.rsplit(qualified, 1)[1]
    return text


def report_user_error(err: BaseException) -> int:
    """Print ``error: <message>`` on stderr, on one line; returns the exit status of a user error
    (2, or the error's own ``exit_status``: 130 for a training that Ctrl-C ended, as a shell has it)."""
    print(f"error: {' '.join(user_message(err).split())}", file=sys.stderr)
    return getattr(err, "exit_status", EXIT_USER_ERROR)

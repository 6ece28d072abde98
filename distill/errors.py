"""The one kind of error a user can fix, and how every tool reports it.

A :class:`UserError` says what input is wrong (a config key or value, a file, a folder) and
what to do about it. The tools print it as one line, ``error: <message>``, and exit with
status 2; any other exception is a bug and keeps its traceback. :class:`~distill.config.ConfigError`
and :class:`~distill.checkpoints.CheckpointError` are user errors, as is :class:`DataError`.
"""

import sys


class UserError(Exception):
    """Input that cannot be used; the message names it and the fix."""


class DataError(UserError, ValueError):
    """An image source that cannot be trained on: no images, unreadable files, too few for a batch."""


# A path the user gave that does not exist or cannot be read, as Python itself reports it
# (the message names the path), is theirs to fix too.
USER_ERRORS = (UserError, FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError)
EXIT_USER_ERROR = 2


def report_user_error(err: BaseException) -> int:
    """Print ``error: <message>`` on stderr, on one line; returns the exit status of a user error."""
    print(f"error: {' '.join(str(err).split())}", file=sys.stderr)
    return EXIT_USER_ERROR

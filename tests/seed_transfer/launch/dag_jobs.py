"""Commands for the DAG tests (``dag_jobs:<name>``; the tests put this folder on the jobs' PYTHONPATH)."""

from pathlib import Path


def touch(argv: list[str]) -> int:
    """Write ``argv[0]`` (a file); with a second argument, first require that file to exist."""
    if len(argv) > 1 and not Path(argv[1]).is_file():
        raise RuntimeError(f"{argv[1]} is missing: the job ran before its dependency")
    Path(argv[0]).write_text("done\n")
    return 0


def fail(argv: list[str]) -> int:
    raise RuntimeError("this job fails on purpose")


def fail_unless(argv: list[str]) -> int:
    """Fail while ``argv[0]`` is missing; once it exists, write ``argv[1]``."""
    if not Path(argv[0]).is_file():
        raise RuntimeError(f"{argv[0]} is missing: this job fails until it exists")
    Path(argv[1]).write_text("done\n")
    return 0


def wait_then_touch(argv: list[str]) -> int:
    """Wait (at most 300 s) for ``argv[0]`` to exist, then write ``argv[1]``."""
    import time

    deadline = time.monotonic() + 300
    while not Path(argv[0]).is_file():
        if time.monotonic() > deadline:
            raise RuntimeError(f"{argv[0]} never appeared")
        time.sleep(0.2)
    Path(argv[1]).write_text("done\n")
    return 0

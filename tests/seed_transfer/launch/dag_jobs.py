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

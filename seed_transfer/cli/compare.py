"""Command line of the comparison (``tools/compare.py`` and the ``seed-transfer-compare``
console script): config + key=value overrides -> every stage, then the report."""

import argparse
import logging
import shlex
import sys

from distill.config import load_config
from distill.errors import USER_ERRORS, report_user_error

from ..pipelines.compare import CompareConfig, run_compare
from ..pipelines.stages import config_path


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="seed-transfer-compare", description=__doc__)
    parser.add_argument("--config", required=True, help="e.g. configs/compare/demo.yaml")
    parser.add_argument("overrides", nargs="*", help="key=value, e.g. det.seeds=3 cls.enabled=false")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    try:
        result = run_compare(load_config(CompareConfig, config_path(args.config), args.overrides),
                             command=_command_line(argv))
    except (*USER_ERRORS, ImportError) as err:  # bad input, or a missing optional package (with how to install it)
        return report_user_error(err)
    skipped = sum(s["status"] == "skipped" for s in result["stages"])
    print(f"{len(result['rows'])} rows, {len(result['stages'])} stages ({skipped} skipped) -> {result['report']}")
    return 0


def _command_line(argv) -> str:
    """The command as typed (``python tools/compare.py ...`` or ``seed-transfer-compare ...``)."""
    if argv is not None:
        return shlex.join(["seed-transfer-compare", *argv])
    program = ["python", sys.argv[0]] if sys.argv[0].endswith(".py") else ["seed-transfer-compare"]
    return shlex.join([*program, *sys.argv[1:]])

#!/usr/bin/env python
"""Compare SEED against plain self-supervised training (MoCo v2), random init and an
optional supervised/teacher checkpoint on classification (linear + kNN) and detection
transfer; writes <output_dir>/report.md, results.csv and plots.

    python tools/compare.py --config configs/compare/demo.yaml            # offline CPU demo
    python tools/compare.py --config configs/compare/demo.yaml det.seeds=3 output_dir=outputs/compare/demo3
    python tools/compare.py --config configs/compare/paper.yaml           # edit its paths first

Every stage writes under output_dir and is skipped when its outputs exist: run the same
command again to continue an interrupted comparison.
"""

import argparse
import logging
import sys
from pathlib import Path

# tools/distill.py would shadow the ``distill`` package: keep this folder off sys.path.
sys.path = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

from distill.checkpoints import CheckpointError  # noqa: E402
from distill.config import ConfigError, load_config  # noqa: E402
from seed_transfer.compare import CompareConfig, run_compare  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True)
    parser.add_argument("overrides", nargs="*", help="key=value, e.g. det.seeds=3 cls.enabled=false")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    try:
        result = run_compare(load_config(CompareConfig, args.config, args.overrides))
    except (ConfigError, CheckpointError, FileNotFoundError, ImportError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    skipped = sum(s["status"] == "skipped" for s in result["stages"])
    print(f"{len(result['rows'])} rows, {len(result['stages'])} stages ({skipped} skipped) -> {result['report']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

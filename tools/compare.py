#!/usr/bin/env python
"""Compare SEED against plain self-supervised training (MoCo v2), random init and an
optional supervised/teacher checkpoint on classification (linear + kNN) and detection
transfer; writes <output_dir>/report.md, results.csv and plots.

    python tools/compare.py --config configs/compare/demo.yaml            # offline CPU demo
    python tools/compare.py --config configs/compare/demo.yaml det.seeds=3 output_dir=outputs/compare/demo3
    python tools/compare.py --config configs/compare/paper.yaml           # edit its paths first

Installed, the same command is `seed-transfer-compare`; `--help` tells the rest.
The command line lives in seed_transfer/cli/compare.py.
"""

import sys

import _entry  # noqa: F401  first: lets ``import distill`` find the package, not tools/distill.py

from seed_transfer.cli.compare import main

if __name__ == "__main__":
    sys.exit(main())

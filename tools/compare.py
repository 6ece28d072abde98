#!/usr/bin/env python
"""Compare SEED against plain self-supervised training (MoCo v2), random init and an
optional supervised/teacher checkpoint on classification (linear + kNN) and detection
transfer; writes <output_dir>/report.md, results.csv and plots.

    python tools/compare.py --config configs/compare/demo.yaml            # offline CPU demo
    python tools/compare.py --config configs/compare/demo.yaml det.seeds=3 output_dir=outputs/compare/demo3
    python tools/compare.py --config configs/compare/paper.yaml           # edit its paths first

Every stage writes under output_dir and is skipped when its outputs exist: run the same
command again to continue an interrupted comparison. Installed, the same command is
`seed-transfer-compare --config ...`.
"""

import sys
from pathlib import Path

# tools/distill.py would shadow the ``distill`` package: keep this folder off sys.path.
sys.path = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

from seed_transfer.cli.compare import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())

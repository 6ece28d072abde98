#!/usr/bin/env python
"""Run a SEED ablation: one base distillation config, a grid of settings (tau_T, queue size,
strategy, teacher, ...), distillation + evaluation per point, then a table, CSV and plot per
axis and <output_dir>/report.md (the paper's Tables 3-5 and Figure 5).

    python tools/ablate.py --config configs/ablation/demo.yaml                 # offline CPU demo
    python tools/ablate.py --config configs/ablation/paper_tau_queue.yaml only=[distill.tau_teacher]
    python tools/ablate.py --config configs/ablation/demo.yaml mode=product --dry-run   # list the points

Installed, the same command is `seed-ablate`; `--help` tells the rest.
The command line lives in seed_transfer/cli/ablate.py.
"""

import sys

import _entry  # noqa: F401  first: lets ``import distill`` find the package, not tools/distill.py

from seed_transfer.cli.ablate import main

if __name__ == "__main__":
    sys.exit(main())

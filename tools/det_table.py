#!/usr/bin/env python
"""Gather tools/transfer_det.py summaries (one per initialisation) into one table.

    python tools/det_table.py outputs/transfer_det/voc_R_18_C4_24k --out outputs/transfer_det/voc_R_18_C4.md

Installed, the same command is `seed-det-table`; `--help` tells the rest.
The command line lives in seed_transfer/cli/det_table.py.
"""

import sys

import _entry  # noqa: F401  first: lets ``import distill`` find the package, not tools/distill.py

from seed_transfer.cli.det_table import main

if __name__ == "__main__":
    sys.exit(main())

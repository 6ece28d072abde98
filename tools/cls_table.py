#!/usr/bin/env python
"""Gather tools/transfer_cls.py results into a table and a plot of validation score against C.

    python tools/cls_table.py outputs/transfer_cls --out outputs/transfer_cls/summary

Installed, the same command is `seed-cls-table`; `--help` tells the rest.
The command line lives in seed_transfer/cli/cls_table.py.
"""

import sys

import _entry  # noqa: F401  first: lets ``import distill`` find the package, not tools/distill.py

from seed_transfer.cli.cls_table import main

if __name__ == "__main__":
    sys.exit(main())

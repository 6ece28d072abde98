#!/usr/bin/env python
"""Gather tools/transfer_cls.py results into a table and a plot of validation score against C.

    python tools/cls_table.py outputs/transfer_cls --out outputs/transfer_cls/summary

Writes <out>.md (linear and kNN tables: models as rows, datasets as columns), <out>.csv
and <out>_val_curves.png, and prints the markdown.
"""

import argparse
import sys
from pathlib import Path

# tools/distill.py would shadow the ``distill`` package: keep this folder off sys.path.
sys.path = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

from seed_transfer.classification.report import gather, markdown_table, plot_val_curves, write_csv  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("paths", nargs="+", help="result JSON files or folders holding them")
    parser.add_argument("--out", required=True, help="output prefix")
    args = parser.parse_args(argv)
    results = gather(args.paths)
    if not results:
        print(f"error: no transfer_cls results found under {args.paths}", file=sys.stderr)
        return 2
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    text = markdown_table(results, "linear") + "\n\n" + markdown_table(results, "knn") + "\n"
    out.with_suffix(".md").write_text(text)
    write_csv(results, out.with_suffix(".csv"))
    plot_val_curves(results, f"{out}_val_curves.png")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

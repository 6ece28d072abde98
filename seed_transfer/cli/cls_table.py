"""Gather tools/transfer_cls.py results into a table and a plot of validation score against C.

    python tools/cls_table.py outputs/transfer_cls --out outputs/transfer_cls/summary

Installed, the same command is `seed-cls-table outputs/transfer_cls --out ...`. Writes <out>.md
(linear and kNN tables: models as rows, datasets as columns), <out>.csv and
<out>_val_curves.png, and prints the markdown.
"""

import sys
from pathlib import Path

from seed_core.errors import MissingFile

from ..classification.report import gather, markdown_table, plot_val_curves, write_csv
from .common import build_parser, run_cli


def _run(args) -> int:
    results = gather(args.paths)
    if not results:
        raise MissingFile(f"no transfer_cls results found under {' '.join(args.paths)}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    text = markdown_table(results, "linear") + "\n\n" + markdown_table(results, "knn") + "\n"
    out.with_suffix(".md").write_text(text)
    write_csv(results, out.with_suffix(".csv"))
    plot_val_curves(results, f"{out}_val_curves.png")
    print(text)
    return 0


def main(argv=None) -> int:
    parser = build_parser(__doc__)
    parser.add_argument("paths", nargs="+", help="result JSON files or folders holding them")
    parser.add_argument("--out", required=True, help="output prefix")
    return run_cli(_run, parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python
"""Gather tools/transfer_det.py summaries (one per initialisation) into one table.

    python tools/det_table.py outputs/transfer_det/voc_R_18_C4_24k --out outputs/transfer_det/voc_R_18_C4.md
"""

import argparse
import sys
from pathlib import Path

# tools/distill.py would shadow the ``distill`` package: keep this folder off sys.path.
sys.path = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

from seed_transfer.detection.transfer import markdown_comparison  # noqa: E402
from seed_transfer.finetune import gather_summaries  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("paths", nargs="+", help="summary.json files or folders holding them")
    parser.add_argument("--out", default=None, help="write the markdown table here too")
    args = parser.parse_args(argv)
    summaries = gather_summaries(args.paths)
    if not summaries:
        print(f"error: no summary.json under {args.paths}", file=sys.stderr)
        return 2
    schedules = {str(s["schedule"]["effective"]) for s in summaries}
    text = markdown_comparison(summaries)
    if len(schedules) > 1:  # the matched-schedule rule: a comparison must share one schedule
        text += "\n\nWARNING: these runs used different schedules: " + "; ".join(sorted(schedules))
    if args.out:
        Path(args.out).write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

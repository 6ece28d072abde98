"""Gather tools/transfer_det.py summaries (one per initialisation) into one table.

    python tools/det_table.py outputs/transfer_det/voc_R_18_C4_24k --out outputs/transfer_det/voc_R_18_C4.md

Installed, the same command is `seed-det-table outputs/transfer_det/voc_R_18_C4_24k`.
"""

import sys
from pathlib import Path

from seed_core.errors import MissingFile

from ..detection.transfer import markdown_comparison
from ..finetune import gather_summaries
from .common import build_parser, run_cli


def _run(args) -> int:
    summaries = gather_summaries(args.paths)
    if not summaries:
        raise MissingFile(f"no summary.json under {' '.join(args.paths)}")
    schedules = {str(s["schedule"]["effective"]) for s in summaries}
    text = markdown_comparison(summaries)
    if len(schedules) > 1:  # the matched-schedule rule: a comparison must share one schedule
        text += "\n\nWARNING: these runs used different schedules: " + "; ".join(sorted(schedules))
    if args.out:
        Path(args.out).write_text(text + "\n")
    print(text)
    return 0


def main(argv=None) -> int:
    parser = build_parser(__doc__)
    parser.add_argument("paths", nargs="+", help="summary.json files or folders holding them")
    parser.add_argument("--out", default=None, help="write the markdown table here too")
    return run_cli(_run, parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())

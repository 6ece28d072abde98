#!/usr/bin/env python
"""Run a SEED ablation: one base distillation config, a grid of settings (tau_T, queue size,
strategy, teacher, ...), distillation + evaluation per point, then a table, CSV and plot per
axis and <output_dir>/report.md (the paper's Tables 3-5 and Figure 5).

    python tools/ablate.py --config configs/ablation/demo.yaml                 # offline CPU demo
    python tools/ablate.py --config configs/ablation/paper_tau_queue.yaml only=[distill.tau_teacher]
    python tools/ablate.py --config configs/ablation/demo.yaml mode=product --dry-run   # list the points

Every point has its own folder under <output_dir>/points/ and is skipped when its student is
exported and its evaluations are written; an interrupted distillation resumes from its
checkpoint. Run the same command again to continue an interrupted ablation.
"""

import argparse
import logging
import sys
from pathlib import Path

# tools/distill.py would shadow the ``distill`` package: keep this folder off sys.path.
sys.path = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

from distill.checkpoints import CheckpointError  # noqa: E402
from distill.config import ConfigError, load_config  # noqa: E402
from seed_transfer.pipelines.ablation import AblationConfig, expand_grid, run_ablation  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True, help="YAML file under configs/ablation/")
    parser.add_argument("--dry-run", action="store_true", help="print the points and their overrides, run nothing")
    parser.add_argument("overrides", nargs="*",
                        help="key=value, e.g. mode=product only=[distill.queue_size] "
                             "'axes.distill.tau_teacher=[0.01, 0.1]'")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    try:
        cfg = load_config(AblationConfig, args.config, args.overrides)
        if args.dry_run:
            for point in expand_grid(cfg).points:
                print(f"{point.name}: {' '.join(point.overrides) or '(base config)'}")
            return 0
        result = run_ablation(cfg)
    except (ConfigError, CheckpointError, FileNotFoundError, ImportError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    skipped = sum(s["status"] == "skipped" for s in result["stages"])
    failed = [p["point"] for p in result["points"] if p["status"] != "done"]
    print(f"{len(result['points'])} points, {len(result['stages'])} stages ({skipped} skipped"
          f"{f', failed: ' + ', '.join(failed) if failed else ''}) -> {result['report']}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

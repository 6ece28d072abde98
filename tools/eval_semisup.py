#!/usr/bin/env python
"""Semi-supervised ImageNet evaluation: fine-tune the whole network on the 1% or 10% label subset
(SimCLR's protocol and subset lists), then top-1/top-5 on the validation set.

    python tools/eval_semisup.py --config configs/eval/semisup_1pct.yaml \
        model.weights=student.pth data.root=/path/imagenet data.subset_file=/path/1percent.txt
    torchrun --nproc_per_node=8 tools/eval_semisup.py --config configs/eval/semisup_10pct.yaml ...
    python tools/eval_semisup.py --config ... --resume               # continue an interrupted run

Writes <train.output_dir>/semisup.json (top-1/top-5), metrics.csv and checkpoint.pth.
"""

import argparse
import logging
import sys
from pathlib import Path

# tools/distill.py would shadow the ``distill`` package: keep this folder off sys.path.
sys.path = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

from distill import distributed as du  # noqa: E402
from distill.checkpoints import CheckpointError  # noqa: E402
from distill.config import ConfigError, load_config  # noqa: E402
from seed_transfer.imagenet.schema import SemisupConfig  # noqa: E402
from seed_transfer.imagenet.semisup import run_semisup  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True)
    parser.add_argument("--resume", action="store_true", help="continue from <train.output_dir>/checkpoint.pth")
    parser.add_argument("overrides", nargs="*", help="key=value, e.g. data.subset_file=/path/10percent.txt")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    try:
        result = run_semisup(load_config(SemisupConfig, args.config, args.overrides), resume=args.resume)
    except (ConfigError, CheckpointError, FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if not du.is_main_process():
        return 0
    final = result["final"]
    print(f"{result['model']} fine-tuned on {result['train_images']} images ({Path(result['subset_file']).name}): "
          f"top-1 {final['top1']:.2f}, top-5 {final['top5']:.2f} -> {result['path']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

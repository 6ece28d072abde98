#!/usr/bin/env python
"""ImageNet linear evaluation of a checkpoint: SGD linear probe on the frozen backbone (MoCo's protocol).

    python tools/eval_linear.py --config configs/eval/linear_imagenet.yaml \
        model.weights=student.pth data.root=/path/imagenet          # holds train/<wnid>/ and val/<wnid>/
    torchrun --nproc_per_node=8 tools/eval_linear.py --config configs/eval/linear_imagenet.yaml ...
    python tools/eval_linear.py --config ... features.cached=true   # train on cached features (fast)
    python tools/eval_linear.py --config ... --resume                # continue an interrupted run

Writes <train.output_dir>/linear_eval.json (top-1/top-5), metrics.csv and checkpoint.pth.
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
from seed_transfer.imagenet.linear_probe import run_linear_probe  # noqa: E402
from seed_transfer.imagenet.schema import LinearEvalConfig  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True)
    parser.add_argument("--resume", action="store_true", help="continue from <train.output_dir>/checkpoint.pth")
    parser.add_argument("overrides", nargs="*", help="key=value, e.g. data.root=/path/imagenet optim.base_lr=30")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    try:
        result = run_linear_probe(load_config(LinearEvalConfig, args.config, args.overrides), resume=args.resume)
    except (ConfigError, CheckpointError, FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if not du.is_main_process():
        return 0
    final, best = result["final"], result["best"]
    print(f"{result['model']} linear probe: top-1 {final['top1']:.2f}, top-5 {final['top5']:.2f} "
          f"(best top-1 {best['top1']:.2f} at epoch {best['epoch']:.0f}) -> {result['path']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

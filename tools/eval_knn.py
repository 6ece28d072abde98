#!/usr/bin/env python
"""kNN evaluation of a checkpoint on an ImageNet-style folder (root/train, root/val).

    python tools/eval_knn.py --config configs/eval/knn_imagenet.yaml \
        model.weights=student.pth data.root=/path/imagenet knn.k=20
"""

import argparse
import logging
import sys
from pathlib import Path

# tools/distill.py would shadow the ``distill`` package: keep this folder off sys.path.
sys.path = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

from distill.checkpoints import CheckpointError  # noqa: E402
from distill.config import ConfigError, load_config  # noqa: E402
from seed_transfer.imagenet.knn import run_knn_eval  # noqa: E402
from seed_transfer.classification.schema import TransferClsConfig  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True)
    parser.add_argument("--chunk-size", type=int, default=1024, help="val images per similarity block")
    parser.add_argument("overrides", nargs="*", help="key=value, e.g. data.root=/path/imagenet")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    try:
        result = run_knn_eval(load_config(TransferClsConfig, args.config, args.overrides), args.chunk_size)
    except (ConfigError, CheckpointError, FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"{result['model']} kNN (k={result['knn']['k']}): top-1 {result['knn']['top1']:.2f}, "
          f"top-5 {result['knn']['top5']:.2f} -> {result['path']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

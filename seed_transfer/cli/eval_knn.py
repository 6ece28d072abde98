"""kNN evaluation of a checkpoint on an ImageNet-style folder (root/train, root/val).

    python tools/eval_knn.py --config configs/eval/knn_imagenet.yaml \
        model.weights=student.pth data.root=/path/imagenet knn.k=20

Installed, the same command is `seed-eval-knn --config ...`.
"""

import sys

from seed_core.config import load_config

from ..classification.schema import TransferClsConfig
from ..imagenet.knn import run_knn_eval
from .common import build_parser, run_cli


def _run(args) -> int:
    result = run_knn_eval(load_config(TransferClsConfig, args.config, args.overrides), args.chunk_size)
    print(
        f"{result['model']} kNN (k={result['knn']['k']}): top-1 {result['knn']['top1']:.2f}, "
        f"top-5 {result['knn']['top5']:.2f} -> {result['path']}"
    )
    return 0


def main(argv=None) -> int:
    parser = build_parser(
        __doc__, config="YAML file under configs/eval/", overrides="key=value, e.g. data.root=/path/imagenet"
    )
    parser.add_argument("--chunk-size", type=int, default=1024, help="val images per similarity block")
    return run_cli(_run, parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())

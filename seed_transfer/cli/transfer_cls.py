"""Linear transfer (scikit-learn logistic regression, C sweep), kNN and few-shot episodes on frozen features.

    python tools/transfer_cls.py --config configs/transfer/cls/linear.yaml \
        model.weights=student.pth data.name=cifar10 data.root=/data/cifar-10-batches-py
    python tools/transfer_cls.py --config configs/transfer/cls/linear.yaml \
        model.weights=random model.arch=resnet18 data.name=dtd data.root=/data/dtd
    python tools/transfer_cls.py --config configs/transfer/cls/stamps.yaml model.weights=random model.arch=resnet18

Installed, the same command is `seed-transfer-cls --config ...`. Writes
<output_dir>/<model>__<dataset>.json; gather many with tools/cls_table.py (seed-cls-table).
"""

import sys

from seed_core.config import load_config

from ..classification.schema import TransferClsConfig
from ..classification.transfer import run_cls_transfer
from .common import build_parser, run_cli


def _run(args) -> int:
    result = run_cls_transfer(load_config(TransferClsConfig, args.config, args.overrides))
    linear = result.get("linear", {})
    knn = result.get("knn", {})
    fewshot = "".join(
        f", {shot['n_way']}-way {key} {shot['score']:.2f} +- {shot['ci95']:.2f}"
        for key, shot in result.get("fewshot", {}).items()
        if isinstance(shot, dict)
    )
    print(
        f"{result['model']} on {result['dataset']} ({result['metric']}): linear {linear.get('score')} "
        f"(C={linear.get('best_c')}), kNN {knn.get('score')}{fewshot} -> {result['path']}"
    )
    return 0


def main(argv=None) -> int:
    parser = build_parser(
        __doc__,
        config="YAML file under configs/transfer/cls/",
        overrides="key=value, e.g. data.name=dtd data.root=/data/dtd",
    )
    return run_cli(_run, parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())

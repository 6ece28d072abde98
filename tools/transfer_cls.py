#!/usr/bin/env python
"""Linear transfer (scikit-learn logistic regression, C sweep), kNN and few-shot episodes on frozen features.

    python tools/transfer_cls.py --config configs/transfer/cls/linear.yaml \
        model.weights=student.pth data.name=cifar10 data.root=/data/cifar-10-batches-py
    python tools/transfer_cls.py --config configs/transfer/cls/linear.yaml \
        model.weights=random model.arch=resnet18 data.name=dtd data.root=/data/dtd
    python tools/transfer_cls.py --config configs/transfer/cls/stamps.yaml model.weights=random model.arch=resnet18

Writes <output_dir>/<model>__<dataset>.json; gather many with tools/cls_table.py.
"""

import argparse
import logging
import sys
from pathlib import Path

# tools/distill.py would shadow the ``distill`` package: keep this folder off sys.path.
sys.path = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

from distill.config import load_config  # noqa: E402
from distill.errors import USER_ERRORS, report_user_error  # noqa: E402
from seed_transfer.classification.transfer import run_cls_transfer  # noqa: E402
from seed_transfer.classification.schema import TransferClsConfig  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True)
    parser.add_argument("overrides", nargs="*", help="key=value, e.g. data.name=dtd data.root=/data/dtd")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    try:
        result = run_cls_transfer(load_config(TransferClsConfig, args.config, args.overrides))
    except USER_ERRORS as err:  # bad input: one line that says what to fix; any other error is a bug (traceback)
        return report_user_error(err)
    linear = result.get("linear", {})
    knn = result.get("knn", {})
    fewshot = "".join(f", {shot['n_way']}-way {key} {shot['score']:.2f} +- {shot['ci95']:.2f}"
                      for key, shot in result.get("fewshot", {}).items() if isinstance(shot, dict))
    print(f"{result['model']} on {result['dataset']} ({result['metric']}): linear {linear.get('score')} "
          f"(C={linear.get('best_c')}), kNN {knn.get('score')}{fewshot} -> {result['path']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

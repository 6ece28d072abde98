#!/usr/bin/env python
"""Linear transfer (scikit-learn logistic regression, C sweep), kNN and few-shot episodes on frozen features.

    python tools/transfer_cls.py --config configs/transfer/cls/linear.yaml \
        model.weights=student.pth data.name=cifar10 data.root=/data/cifar-10-batches-py
    python tools/transfer_cls.py --config configs/transfer/cls/linear.yaml \
        model.weights=random model.arch=resnet18 data.name=dtd data.root=/data/dtd
    python tools/transfer_cls.py --config configs/transfer/cls/stamps.yaml model.weights=random model.arch=resnet18

Installed, the same command is `seed-transfer-cls`; `--help` tells the rest.
The command line lives in seed_transfer/cli/transfer_cls.py.
"""

import sys

import _entry  # noqa: F401  first: lets ``import distill`` find the package, not tools/distill.py

from seed_transfer.cli.transfer_cls import main

if __name__ == "__main__":
    sys.exit(main())

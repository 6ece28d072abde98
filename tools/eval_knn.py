#!/usr/bin/env python
"""kNN evaluation of a checkpoint on an ImageNet-style folder (root/train, root/val).

    python tools/eval_knn.py --config configs/eval/knn_imagenet.yaml \
        model.weights=student.pth data.root=/path/imagenet knn.k=20

Installed, the same command is `seed-eval-knn`; `--help` tells the rest.
The command line lives in seed_transfer/cli/eval_knn.py.
"""

import sys

import _entry  # noqa: F401  first: lets ``import distill`` find the package, not tools/distill.py

from seed_transfer.cli.eval_knn import main

if __name__ == "__main__":
    sys.exit(main())

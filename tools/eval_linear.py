#!/usr/bin/env python
"""ImageNet linear evaluation of a checkpoint: SGD linear probe on the frozen backbone (MoCo's protocol).

    python tools/eval_linear.py --config configs/eval/linear_imagenet.yaml \
        model.weights=student.pth data.root=/path/imagenet          # holds train/<wnid>/ and val/<wnid>/
    torchrun --nproc_per_node=8 tools/eval_linear.py --config configs/eval/linear_imagenet.yaml ...
    python tools/eval_linear.py --config ... features.cached=true   # train on cached features (fast)
    python tools/eval_linear.py --config ... --resume                # continue an interrupted run

Installed, the same command is `seed-eval-linear`; `--help` tells the rest.
The command line lives in seed_transfer/cli/eval_linear.py.
"""

import sys

import _entry  # noqa: F401  first: lets ``import distill`` find the package, not tools/distill.py

from seed_transfer.cli.eval_linear import main

if __name__ == "__main__":
    sys.exit(main())

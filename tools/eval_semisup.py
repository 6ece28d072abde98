#!/usr/bin/env python
"""Semi-supervised ImageNet evaluation: fine-tune the whole network on the 1% or 10% label subset
(SimCLR's protocol and subset lists), then top-1/top-5 on the validation set.

    python tools/eval_semisup.py --config configs/eval/semisup_1pct.yaml \
        model.weights=student.pth data.root=/path/imagenet data.subset_file=/path/1percent.txt
    torchrun --nproc_per_node=8 tools/eval_semisup.py --config configs/eval/semisup_10pct.yaml ...
    python tools/eval_semisup.py --config ... --resume               # continue an interrupted run

Installed, the same command is `seed-eval-semisup`; `--help` tells the rest.
The command line lives in seed_transfer/cli/eval_semisup.py.
"""

import sys

import _entry  # noqa: F401  first: lets ``import distill`` find the package, not tools/distill.py

from seed_transfer.cli.eval_semisup import main

if __name__ == "__main__":
    sys.exit(main())

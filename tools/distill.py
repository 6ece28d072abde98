#!/usr/bin/env python
"""Train a small student to mimic a frozen self-supervised teacher (SEED), or a baseline.

    python tools/distill.py --config configs/distill/seed_r18_mocov2_r50.yaml \
        data.root=/path/imagenet/train teacher.weights=/path/moco_v2_200ep_pretrain.pth.tar
    torchrun --nproc_per_node=8 tools/distill.py --config ... (same arguments)
    python tools/distill.py --config configs/distill/demo.yaml          # offline, CPU, minutes
    python tools/distill.py --config ... teacher.cache_dir=/fast/teacher_cache --teacher-only

Installed, the same command is `seed-distill`; `--help` tells the rest.
The command line lives in seed_transfer/cli/distill.py.
"""

import sys

import _entry  # noqa: F401  first: lets ``import distill`` find the package, not tools/distill.py

from seed_transfer.cli.distill import main

if __name__ == "__main__":
    sys.exit(main())

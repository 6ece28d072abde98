#!/usr/bin/env python
"""Detection transfer: convert a backbone, fine-tune Faster/Mask R-CNN with the matched
schedule of MoCo/SEED, report AP / AP50 / AP75 (mean +- std over seeds).

    python tools/transfer_det.py --config configs/det/voc_R_18_C4_24k.yaml \
        --weights student.pth --num-gpus 8 --seeds 3 --data-root /datasets
    python tools/transfer_det.py --config configs/det/trees_R_18_C4_demo.yaml --weights random
    python tools/transfer_det.py --engine torchvision --config configs/det/trees_R_50_FPN_demo.yaml \
        --weights student.pth                     # no Detectron2 needed; any backbone through FPN
    torchrun --nproc_per_node=8 tools/transfer_det.py --engine torchvision --num-gpus 1 --config ...
    python tools/transfer_det.py --config configs/det/trees_R_18_C4_demo.yaml run.seeds=3 SOLVER.MAX_ITER 100

Installed, the same command is `seed-transfer-det`; `--help` tells the rest.
The command line lives in seed_transfer/cli/transfer_det.py.
"""

import sys

import _entry  # noqa: F401  first: lets ``import distill`` find the package, not tools/distill.py

from seed_transfer.cli.transfer_det import main

if __name__ == "__main__":
    sys.exit(main())

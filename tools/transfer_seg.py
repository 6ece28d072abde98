#!/usr/bin/env python
"""Segmentation transfer: convert a backbone, fine-tune FCN-D8 / DeepLabV3-D8 (MMSegmentation)
with the model zoo's schedule, report mIoU / mAcc / aAcc and per-class IoU (mean +- std over seeds).

    python tools/transfer_seg.py --config configs/seg/fcn-d8_voc12aug-512x512_20k.yaml \
        --weights student.pth --seeds 3 --data-root /datasets
    torchrun --nproc_per_node=4 tools/transfer_seg.py --config configs/seg/fcn-d8_cityscapes-512x1024_40k.yaml \
        --weights moco_v2_800ep_pretrain.pth.tar --data-root /datasets
    python tools/transfer_seg.py --config configs/seg/demo_fcn-d8_voc_example.yaml --weights random   # offline, CPU
    python tools/transfer_seg.py --config configs/seg/demo_fcn-d8_voc_example.yaml run.seeds=2 schedule.iters=100

Installed, the same command is `seed-transfer-seg`; `--help` tells the rest.
The command line lives in seed_transfer/cli/transfer_seg.py.
"""

import sys

import _entry  # noqa: F401  first: lets ``import distill`` find the package, not tools/distill.py

from seed_transfer.cli.transfer_seg import main

if __name__ == "__main__":
    sys.exit(main())

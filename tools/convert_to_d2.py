#!/usr/bin/env python
"""Convert a pretrained ResNet backbone to a Detectron2 weights file (.pkl).

    python tools/convert_to_d2.py student.pth student_d2.pkl
    python tools/convert_to_d2.py moco_v2_800ep_pretrain.pth.tar moco_r50.pkl --arch resnet50

Installed, the same command is `seed-convert-d2`; `--help` tells the rest.
The command line lives in seed_transfer/cli/convert_d2.py.
"""

import sys

import _entry  # noqa: F401  first: lets ``import distill`` find the package, not tools/distill.py

from seed_transfer.cli.convert_d2 import main

if __name__ == "__main__":
    sys.exit(main())

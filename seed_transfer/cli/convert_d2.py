"""Convert a pretrained ResNet backbone to a Detectron2 weights file (.pkl).

    python tools/convert_to_d2.py student.pth student_d2.pkl
    python tools/convert_to_d2.py moco_v2_800ep_pretrain.pth.tar moco_r50.pkl --arch resnet50

Installed, the same command is `seed-convert-d2 student.pth student_d2.pkl`. Reads every
layout distill.checkpoints reads (our student export, MoCo v1/v2/v3, SwAV, SimCLR, DINO,
torchvision, timm ResNets). Prints the number of converted tensors, every key that was not
converted, and the Detectron2 settings the weights need.
"""

import json
import sys
from pathlib import Path

from distill.checkpoints import LAYOUTS
from seed_core.errors import UserError

from ..detection.convert import convert_checkpoint
from .common import build_parser, run_cli


def _run(args) -> int:
    if Path(args.output).resolve() == Path(args.input).resolve():
        raise UserError(f"{args.output} is the input: give the converted weights another name, e.g. student_d2.pkl")
    report = convert_checkpoint(args.input, args.output, args.arch, args.layout, args.allow_unsafe_pickle)
    print(
        f"{args.input} ({report['layout']}, {report['arch']}, ResNet-{report['depth']}): "
        f"converted {report['converted']} tensors -> {args.output}"
    )
    if report["dropped"]:
        print(f"left out by the checkpoint loader: {', '.join(report['dropped'])}")
    print(f"skipped {len(report['skipped'])} keys" + (":" if report["skipped"] else ""))
    for key in report["skipped"]:
        print(f"  {key}")
    print("Detectron2 settings these weights need:")
    for key, value in report["settings"].items():
        print(f"  {key}: {json.dumps(value)}")  # YAML-readable
    return 0


def main(argv=None) -> int:
    parser = build_parser(__doc__)
    parser.add_argument("input", help="checkpoint file (.pth, .pth.tar, .safetensors)")
    parser.add_argument("output", help="Detectron2 weights to write (.pkl)")
    parser.add_argument("--arch", default=None, help="e.g. resnet50; default: the arch the file records")
    parser.add_argument("--layout", default="auto", choices=("auto", *LAYOUTS))
    parser.add_argument(
        "--allow-unsafe-pickle",
        action="store_true",
        help="unpickle arbitrary classes (runs code from the file: trusted files only)",
    )
    return run_cli(_run, parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python
"""Segmentation transfer: convert a backbone, fine-tune FCN-D8 / DeepLabV3-D8 (MMSegmentation)
with the model zoo's schedule, report mIoU / mAcc / aAcc and per-class IoU (mean +- std over seeds).

    python tools/transfer_seg.py --config configs/seg/fcn-d8_voc12aug-512x512_20k.yaml \
        --weights student.pth --seeds 3 --data-root /datasets
    torchrun --nproc_per_node=4 tools/transfer_seg.py --config configs/seg/fcn-d8_cityscapes-512x1024_40k.yaml \
        --weights moco_v2_800ep_pretrain.pth.tar --data-root /datasets
    python tools/transfer_seg.py --config configs/seg/demo_fcn-d8_voc_example.yaml --weights random   # offline, CPU

--weights takes any checkpoint the project reads (SEED student, MoCo/SwAV/SimCLR/DINO, torchvision,
timm ResNets) or "random" (then give model.depth=50). Trailing key=value pairs override the config
(e.g. schedule.iters=100 data.batch_size=2). Needs the [seg] extra: pip install -e '.[seg]'.
"""

import argparse
import logging
import sys
from pathlib import Path

# tools/distill.py would shadow the ``distill`` package: keep this folder off sys.path.
sys.path = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

from distill.distributed import is_launch_main_process  # noqa: E402
from distill.errors import USER_ERRORS, report_user_error  # noqa: E402
from seed_transfer.backbones import RANDOM, require_weights, weights_name  # noqa: E402
from seed_transfer.segmentation.transfer import markdown_comparison, run_segmentation_transfer  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True, help="a config under configs/seg/")
    parser.add_argument("--weights", default="random")
    parser.add_argument("--arch", default=None, help="architecture when the checkpoint does not record it")
    parser.add_argument("--layout", default="auto")
    parser.add_argument("--allow-unsafe-pickle", action="store_true")
    parser.add_argument("--name", default=None, help="row label in summaries")
    parser.add_argument("--output-dir", default=None, help="default: outputs/transfer_seg/<config>/<name>")
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--data-root", default=None, help="folder with VOCdevkit/ or cityscapes/ (default ./datasets)")
    parser.add_argument("--resume", action="store_true", help="continue an interrupted seed from its last checkpoint")
    parser.add_argument("opts", nargs="*", help="config overrides key=value")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    name = args.name or weights_name(args.weights)
    output_dir = args.output_dir or f"outputs/transfer_seg/{Path(args.config).stem}/{name}"
    try:
        require_weights(args.weights, "--weights", keywords=(RANDOM,))  # before the output folder is made
        summary = run_segmentation_transfer(
            args.config, args.weights, output_dir, seeds=args.seeds, name=name, data_root=args.data_root,
            opts=args.opts, resume=args.resume, arch=args.arch, layout=args.layout,
            allow_unsafe_pickle=args.allow_unsafe_pickle)
    # ImportError: a missing optional engine, with how to install it; ValueError: the dataset and
    # config readers of the engines report bad files as ValueError (naming file and line)
    except (*USER_ERRORS, ImportError, ValueError) as err:
        return report_user_error(err)
    if is_launch_main_process():  # under torchrun, one process reports
        print(markdown_comparison([summary]))
        print(f"-> {output_dir}/summary.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())

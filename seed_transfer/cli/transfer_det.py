"""Detection transfer: convert a backbone, fine-tune Faster/Mask R-CNN with the matched
schedule of MoCo/SEED, report AP / AP50 / AP75 (mean +- std over seeds).

    python tools/transfer_det.py --config configs/det/voc_R_18_C4_24k.yaml \
        --weights student.pth --num-gpus 8 --seeds 3 --data-root /datasets
    python tools/transfer_det.py --config configs/det/trees_R_18_C4_demo.yaml --weights random
    python tools/transfer_det.py --engine torchvision --config configs/det/trees_R_50_FPN_demo.yaml \
        --weights student.pth                     # no Detectron2 needed; any backbone through FPN
    torchrun --nproc_per_node=8 tools/transfer_det.py --engine torchvision --num-gpus 1 --config ...
    python tools/transfer_det.py --config configs/det/trees_R_18_C4_demo.yaml run.seeds=3 SOLVER.MAX_ITER 100

Installed, the same command is `seed-transfer-det --config ...`.
--engine: detectron2, torchvision (torchvision.models.detection, the same configs, protocol
and metrics.json, C4 and FPN; ResNets, MobileNetV3, EfficientNet, timm CNNs through FPN), or
auto (Detectron2 when installed, else torchvision; the log says which).
--weights takes any checkpoint the project reads (SEED student, MoCo/SwAV/SimCLR/DINO,
torchvision, timm), a Detectron2 .pkl (detectron2 engine), or "random".
The run's keys are run.<key>=<value> arguments (run.weights, run.seeds, run.output_dir, run.name,
run.data_root, run.engine, run.num_gpus, run.ims_per_batch, run.resume, run.overwrite, run.arch,
run.layout, run.allow_unsafe_pickle); each flag is an alias of one. The other trailing KEY VALUE pairs
override the Detectron2 config (e.g. SOLVER.MAX_ITER 100) in both engines.
Finished seeds (seed<k>/metrics.json) are skipped; an interrupted seed is continued only with
--resume and started over only with --overwrite; a seed folder has one writer at a time.
"""

import argparse
import sys

from ..detection.plan import ENGINES, DetRequest
from ..detection.transfer import markdown_comparison, transfer
from .common import build_parser, launchable, run_cli
from .finetune import PREFIX, REQUEST_FLAGS, add_request_flags, run_transfer

DET_FLAGS = {**REQUEST_FLAGS, "engine": "--engine", "num_gpus": "--num-gpus", "ims_per_batch": "--ims-per-batch"}


def parse_args(argv=None):
    parser = build_parser(__doc__, config="a config under configs/det/")
    add_request_flags(parser, "transfer_det")
    parser.add_argument(
        "--num-gpus",
        type=int,
        default=None,
        help=f"= {PREFIX}num_gpus; 0 (default): CPU; N: N GPU processes (under torchrun: GPUs per process)",
    )
    parser.add_argument(
        "--ims-per-batch",
        type=int,
        default=None,
        help=f"= {PREFIX}ims_per_batch: total batch when fewer GPUs force it: lr scales, iterations/steps inversely",
    )
    parser.add_argument(
        "--engine",
        default=None,
        choices=ENGINES,
        help=f"= {PREFIX}engine; auto (default): Detectron2 when installed, else torchvision (logged)",
    )
    parser.add_argument(
        "opts", nargs=argparse.REMAINDER, help=f"{PREFIX}<key>=<value> run keys, then Detectron2 KEY VALUE overrides"
    )
    return parser.parse_args(argv)


def _run(args) -> int:
    return run_transfer(args.opts, DetRequest, args, "transfer_det", DET_FLAGS, transfer, markdown_comparison)


@launchable("transfer_det")
def main(argv=None) -> int:
    return run_cli(_run, parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())

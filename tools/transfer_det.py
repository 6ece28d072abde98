#!/usr/bin/env python
"""Detection transfer: convert a backbone, fine-tune Faster/Mask R-CNN with the matched
schedule of MoCo/SEED, report AP / AP50 / AP75 (mean +- std over seeds).

    python tools/transfer_det.py --config configs/det/voc_R_18_C4_24k.yaml \
        --weights student.pth --num-gpus 8 --seeds 3 --data-root /datasets
    python tools/transfer_det.py --config configs/det/trees_R_18_C4_demo.yaml --weights random
    python tools/transfer_det.py --engine torchvision --config configs/det/trees_R_50_FPN_demo.yaml \
        --weights student.pth                     # no Detectron2 needed; any backbone through FPN
    torchrun --nproc_per_node=8 tools/transfer_det.py --engine torchvision --num-gpus 1 --config ...

--engine: detectron2, torchvision (torchvision.models.detection, the same configs, protocol
and metrics.json, C4 and FPN; ResNets, MobileNetV3, EfficientNet, timm CNNs through FPN), or
auto (Detectron2 when installed, else torchvision; the log says which).
--weights takes any checkpoint the project reads (SEED student, MoCo/SwAV/SimCLR/DINO,
torchvision, timm), a Detectron2 .pkl (detectron2 engine), or "random". Trailing KEY VALUE
pairs override the Detectron2 config (e.g. SOLVER.MAX_ITER 100) in both engines.
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
from seed_transfer.detection.plan import ENGINES  # noqa: E402
from seed_transfer.detection.transfer import markdown_comparison, run_detection_transfer  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True, help="a config under configs/det/")
    parser.add_argument("--weights", default="random")
    parser.add_argument("--arch", default=None, help="architecture when the checkpoint does not record it")
    parser.add_argument("--layout", default="auto")
    parser.add_argument("--allow-unsafe-pickle", action="store_true")
    parser.add_argument("--name", default=None, help="row label in summaries")
    parser.add_argument("--output-dir", default=None, help="default: outputs/transfer_det/<config>/<name>")
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--num-gpus", type=int, default=0,
                        help="0: CPU; N: N GPU processes (under torchrun: 1, GPUs per process)")
    parser.add_argument("--ims-per-batch", type=int, default=None,
                        help="total batch when fewer GPUs force it: lr scales, iterations/steps inversely")
    parser.add_argument("--data-root", default=None, help="default: $DETECTRON2_DATASETS or ./datasets")
    parser.add_argument("--engine", default="auto", choices=ENGINES,
                        help="auto: Detectron2 when installed, else torchvision (logged)")
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("opts", nargs=argparse.REMAINDER, help="Detectron2 KEY VALUE overrides")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    name = args.name or weights_name(args.weights)
    output_dir = args.output_dir or f"outputs/transfer_det/{Path(args.config).stem}/{name}"
    try:
        require_weights(args.weights, "--weights", keywords=(RANDOM,))  # before the output folder is made
        summary = run_detection_transfer(
            args.config, args.weights, output_dir, seeds=args.seeds, name=name, engine=args.engine,
            ims_per_batch=args.ims_per_batch, num_gpus=args.num_gpus, data_root=args.data_root, opts=args.opts,
            resume=args.resume, arch=args.arch, layout=args.layout, allow_unsafe_pickle=args.allow_unsafe_pickle)
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

"""Segmentation transfer: convert a backbone, fine-tune FCN-D8 / DeepLabV3-D8 (MMSegmentation)
with the model zoo's schedule, report mIoU / mAcc / aAcc and per-class IoU (mean +- std over seeds).

    python tools/transfer_seg.py --config configs/seg/fcn-d8_voc12aug-512x512_20k.yaml \
        --weights student.pth --seeds 3 --data-root /datasets
    torchrun --nproc_per_node=4 tools/transfer_seg.py --config configs/seg/fcn-d8_cityscapes-512x1024_40k.yaml \
        --weights moco_v2_800ep_pretrain.pth.tar --data-root /datasets
    python tools/transfer_seg.py --config configs/seg/demo_fcn-d8_voc_example.yaml --weights random   # offline, CPU
    python tools/transfer_seg.py --config configs/seg/demo_fcn-d8_voc_example.yaml run.seeds=2 schedule.iters=100

Installed, the same command is `seed-transfer-seg --config ...`.
--weights takes any checkpoint the project reads (SEED student, MoCo/SwAV/SimCLR/DINO, torchvision,
timm ResNets) or "random" (then give model.depth=50). The run's keys are run.<key>=<value>
arguments (run.weights, run.seeds, run.output_dir, run.name, run.data_root, run.resume, run.overwrite,
run.arch, run.layout, run.allow_unsafe_pickle); each flag is an alias of one. The other trailing key=value
pairs override the config (e.g. schedule.iters=100 data.batch_size=2). Finished seeds
(seed<k>/metrics.json) are skipped; an interrupted seed is continued only with --resume and started
over only with --overwrite. Needs the [seg] extra: pip install -e '.[seg]'.
"""

import sys

from ..finetune import FinetuneRequest
from ..segmentation.transfer import markdown_comparison, transfer
from .common import build_parser, launchable, run_cli
from .finetune import PREFIX, REQUEST_FLAGS, add_request_flags, run_transfer


def parse_args(argv=None):
    parser = build_parser(
        __doc__,
        config="a config under configs/seg/",
        overrides=f"{PREFIX}<key>=<value> run keys and key=value config overrides",
    )
    add_request_flags(parser, "transfer_seg")
    return parser.parse_args(argv)


def _run(args) -> int:
    return run_transfer(
        args.overrides, FinetuneRequest, args, "transfer_seg", REQUEST_FLAGS, transfer, markdown_comparison
    )


@launchable("transfer_seg")
def main(argv=None) -> int:
    return run_cli(_run, parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())

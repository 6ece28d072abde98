"""Train a small student to mimic a frozen self-supervised teacher (SEED), or a baseline.

    python tools/distill.py --config configs/distill/seed_r18_mocov2_r50.yaml \
        data.root=/path/imagenet/train teacher.weights=/path/moco_v2_200ep_pretrain.pth.tar
    torchrun --nproc_per_node=8 tools/distill.py --config ... (same arguments)
    python tools/distill.py --config configs/distill/demo.yaml          # offline, CPU, minutes
    python tools/distill.py --config ... teacher.cache_dir=/fast/teacher_cache --teacher-only

Installed, the same command is `seed-distill --config ...`. Any config key can be overridden
as key=value; --resume continues the run in train.output_dir from its last checkpoint (or
starts it when there is none). --teacher-only runs just the teacher over every epoch's views
and fills teacher.cache_dir; students with the same teacher, data and train.seed then read it.
"""

import sys

from distill.schema import DistillConfig
from distill.trainer import precompute_teacher, train
from seed_core.config import load_config

from .common import build_parser, launchable, run_cli


def parse_args(argv=None):
    parser = build_parser(
        __doc__,
        config="YAML file under configs/distill/",
        resume="continue from <train.output_dir>/checkpoint.pth",
        overrides="key=value config overrides, e.g. optim.epochs=100",
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="start over in a train.output_dir that holds a run (removes its checkpoint and student)",
    )
    parser.add_argument(
        "--teacher-only",
        action="store_true",
        help="fill teacher.cache_dir with the teacher's embeddings of every epoch's views; no student",
    )
    return parser.parse_args(argv)


def _run(args) -> int:
    cfg = load_config(DistillConfig, args.config, args.overrides)
    if args.teacher_only:
        print(f"teacher cache: {precompute_teacher(cfg)}")
        return 0
    student = train(cfg, resume=args.resume, overwrite=args.overwrite)
    print(f"student backbone: {student}")
    return 0


@launchable("distill", DistillConfig, "train.output_dir")
def main(argv=None) -> int:
    return run_cli(_run, parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())

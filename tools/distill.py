#!/usr/bin/env python
"""Train a small student to mimic a frozen self-supervised teacher (SEED), or a baseline.

    python tools/distill.py --config configs/distill/seed_r18_mocov2_r50.yaml \
        data.root=/path/imagenet/train teacher.weights=/path/moco_v2_200ep_pretrain.pth.tar
    torchrun --nproc_per_node=8 tools/distill.py --config ... (same arguments)
    python tools/distill.py --config configs/distill/demo.yaml          # offline, CPU, minutes
    python tools/distill.py --config ... teacher.cache_dir=/fast/teacher_cache --teacher-only

Any config key can be overridden as key=value; --resume continues the run in
train.output_dir from its last checkpoint (or starts it when there is none).
--teacher-only runs just the teacher over every epoch's views and fills
teacher.cache_dir; students with the same teacher, data and train.seed then read it.
"""

import argparse
import logging
import sys
from pathlib import Path

# Python puts this script's folder first on sys.path, where this file would shadow
# the ``distill`` package it drives: take the folder off before importing.
sys.path = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

from distill.config import load_config  # noqa: E402
from distill.engine import precompute_teacher, train  # noqa: E402
from distill.errors import USER_ERRORS, report_user_error  # noqa: E402
from distill.schema import DistillConfig  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True, help="YAML file under configs/distill/")
    parser.add_argument("--resume", action="store_true", help="continue from <train.output_dir>/checkpoint.pth")
    parser.add_argument("--teacher-only", action="store_true",
                        help="fill teacher.cache_dir with the teacher's embeddings of every epoch's views; no student")
    parser.add_argument("overrides", nargs="*", help="key=value config overrides, e.g. optim.epochs=100")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    try:
        cfg = load_config(DistillConfig, args.config, args.overrides)
        if args.teacher_only:
            print(f"teacher cache: {precompute_teacher(cfg)}")
            return 0
        student = train(cfg, resume=args.resume)
    except USER_ERRORS as err:  # bad input: one line that says what to fix; any other error is a bug (traceback)
        return report_user_error(err)
    print(f"student backbone: {student}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Distil members of the `small` preset with ``distill.seeds=4`` exactly as the comparison would (its
own ``distill_configs`` and trainer; ``output_dir=/root/exp/small4``), on 1 torch thread:

    OMP_NUM_THREADS=1 nice -n 5 python distill_members.py seed-s2 moco-s3   # and, beside it, moco-s2 seed-s3

What ran for members 2 and 3 of `compare_small4` (the same calls, tidied for the linter); a later
``tools/compare.py --config configs/compare/small4.yaml`` finds the students complete and skips them.
"""

import logging
import sys

import torch

from distill.trainer import train
from seed_core.config import load_config
from seed_transfer.pipelines.compare.plan import distill_configs
from seed_transfer.pipelines.compare.schema import CompareConfig

torch.set_num_threads(1)
logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
cfg = load_config(CompareConfig, "configs/compare/small.yaml", ["output_dir=/root/exp/small4", "distill.seeds=4"])
configs = distill_configs(cfg)
for tag in sys.argv[1:]:
    strategy, member = tag.split("-s")
    dcfg = configs[(strategy, int(member))]
    print(tag, dcfg.train.seed, dcfg.train.output_dir, flush=True)
    train(dcfg, resume=True)

"""Runs a tiny distillation, alone or under torchrun (used by test_trainer.py).

python -m torch.distributed.run --standalone --nproc_per_node=2 train_worker.py DATA OUT key=value ...
"""

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))

from tiny import TINY, tiny_cnn  # noqa: E402

from distill.builder import build_method  # noqa: E402
from distill.schema import DistillConfig  # noqa: E402
from distill.teacher import FrozenTeacher  # noqa: E402
from distill.trainer import train  # noqa: E402
from seed_core.config import load_config  # noqa: E402

BASE = [
    f"student.arch={TINY}",
    "teacher.weights=in-memory",
    "distill.queue_size=20",
    "data.image_size=16",
    "data.num_workers=0",
    "optim.batch_size=8",
    "optim.epochs=3",
    "optim.warmup_epochs=1",
    "optim.base_lr=3.0",
    "train.log_every=1",
    "train.tensorboard=false",
]


def tiny_config(data_root, output_dir, *overrides) -> DistillConfig:
    return load_config(
        DistillConfig, None, [*BASE, f"data.root={data_root}", f"train.output_dir={output_dir}", *overrides]
    )


def tiny_method(cfg: DistillConfig):
    torch.manual_seed(123)
    teacher_backbone, _ = tiny_cnn()
    teacher = FrozenTeacher(teacher_backbone, torch.nn.Linear(16, 8))
    return build_method(cfg, teacher=teacher)


def run(data_root, output_dir, *overrides, resume=False):
    """A tiny run; with a teacher.weights file in ``overrides`` the method is built from the config."""
    cfg = tiny_config(data_root, output_dir, *overrides)
    return train(cfg, resume=resume, method=tiny_method(cfg) if cfg.teacher.weights == "in-memory" else None)


if __name__ == "__main__":
    run(sys.argv[1], sys.argv[2], *sys.argv[3:])

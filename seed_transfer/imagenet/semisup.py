"""Semi-supervised ImageNet evaluation (SimCLR's protocol, used by SEED): the whole network
(backbone + a new linear classifier) fine-tuned on the 1% or 10% label subset, scored top-1/top-5
on the full validation set.

    result = run_semisup(load_config(SemisupConfig, "configs/eval/semisup_1pct.yaml", [...]))
"""

from pathlib import Path

import torch
import torch.nn as nn

from seed_core import distributed as du
from seed_core.config import resolve_path
from seed_transfer.backbones import load_backbone
from seed_transfer.classification.features import FeatureTransform
from seed_transfer.classification.schema import MODEL_UNSAFE_OPTION
from seed_transfer.classification.transfer import model_name

from .data import SeededLabelled, imagenet_split, prepare_root, train_transform
from .linear_probe import feature_dim, linear_head
from .outputs import evaluation_folder, start_output, write_result
from .schema import SemisupConfig
from .subsets import build_subset
from .trainer import TrainJob, fit


class FineTuned(nn.Module):
    """images N x 3 x H x W -> backbone (trained, BN in train mode) -> N x D -> head -> logits N x C."""

    def __init__(self, backbone: nn.Module, head: nn.Linear):
        super().__init__()
        self.backbone = backbone.requires_grad_(True)
        self.head = head

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(images))


def subset_path(cfg: SemisupConfig, root: Path) -> Path:
    """``data.subset_file``; with ``data.demo`` a bare name (``1percent.txt``) is the demo folder's list."""
    path = Path(resolve_path(cfg.data.subset_file))
    if cfg.data.demo is not None and not path.is_absolute() and not path.exists():
        return root / path
    return path


def run_semisup(cfg: SemisupConfig, resume: bool = False, overwrite: bool = False) -> dict:
    """Fine-tune on the subset of ``cfg`` and evaluate; writes ``<output_dir>/semisup.json`` and returns it.
    A run already in the folder is continued (``resume``) or started over (``overwrite``) only when
    asked, and the folder has one writer at a time (:func:`.outputs.evaluation_folder`)."""
    with evaluation_folder(cfg, "semisup", resume, overwrite):
        return _semisup(cfg, resume)


def _semisup(cfg: SemisupConfig, resume: bool) -> dict:
    du.init_from_env()
    out = start_output(cfg, cfg.train.output_dir)
    root = prepare_root(cfg.data, out)
    m, f = cfg.model, cfg.features
    list_path = subset_path(cfg, root)
    subset = build_subset(root / "train", list_path)
    val = imagenet_split(root, "val", FeatureTransform(f.resize, f.crop, tuple(m.mean), tuple(m.std)).build())
    backbone, arch = load_backbone(
        m.weights, m.arch, m.layout, m.allow_unsafe_pickle, m.seed, unsafe_option=MODEL_UNSAFE_OPTION
    )
    head = linear_head(feature_dim(backbone, cfg.data.train_crop), len(subset.classes), cfg.train.seed)
    model = FineTuned(backbone, head)
    groups = [
        {"params": list(backbone.parameters()), "lr_scale": 1.0},
        {"params": list(head.parameters()), "lr_scale": cfg.optim.head_lr_scale},
    ]
    job = TrainJob(
        model=model,
        trained=model,
        param_groups=groups,
        train_set=SeededLabelled(subset, train_transform(cfg.data.train_crop, m.mean, m.std)),
        val_set=val,
        resume_key={
            "model": vars(m),
            "optim": vars(cfg.optim),
            "subset_file": str(list_path),
            "resize": f.resize,
            "crop": f.crop,
            "train_crop": cfg.data.train_crop,
        },
    )
    fitted = fit(job, cfg.optim, cfg.train, cfg.data.num_workers, resume, desc=f"fine-tune {list_path.name}")
    return write_result(
        out,
        "semisup",
        {
            "model": model_name(cfg),
            "weights": m.weights,
            "arch": arch,
            "data_root": str(root),
            "subset_file": str(list_path),
            "num_classes": len(subset.classes),
            "train_images": len(subset),
            "val_images": len(val),
            **fitted,
        },
        cfg,
    )

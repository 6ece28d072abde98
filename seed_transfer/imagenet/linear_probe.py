"""ImageNet linear evaluation (MoCo's ``main_lincls.py`` protocol): a linear classifier trained with
SGD on the pooled features of a frozen backbone.

The backbone's weights and BN statistics never change: it is frozen (``requires_grad=False``),
runs under ``no_grad`` and stays in eval mode even when the probe is put in train mode. Training
images get RandomResizedCrop + flip; validation images resize + centre crop. With
``features.cached=true`` the classifier trains on cached centre-crop features instead (no
augmentation, far faster), read through the feature cache that linear transfer and kNN share.

    result = run_linear_probe(load_config(LinearEvalConfig, "configs/eval/linear_imagenet.yaml", [...]))
"""

import torch
import torch.nn as nn

from seed_core import distributed as du
from seed_transfer.backbones import load_backbone
from seed_transfer.classification.features import FeatureTransform
from seed_transfer.classification.schema import MODEL_UNSAFE_OPTION, TransferClsConfig, TransferDataConfig
from seed_transfer.classification.transfer import SplitFeatures, model_name

from .data import KeyedFeatures, LabelledFeatures, SeededLabelled, imagenet_split, prepare_root, train_transform
from .outputs import evaluation_folder, start_output, write_result
from .schema import LinearEvalConfig
from .trainer import TrainJob, fit


def linear_head(feature_dim: int, num_classes: int, seed: int) -> nn.Linear:
    """D -> C linear layer initialised as in MoCo's linear evaluation: weights N(0, 0.01), bias 0."""
    head = nn.Linear(feature_dim, num_classes)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        head.weight.data.normal_(mean=0.0, std=0.01)
    head.bias.data.zero_()
    return head


@torch.no_grad()
def feature_dim(backbone: nn.Module, image_size: int) -> int:
    """Width D of the pooled features of ``backbone`` (one eval-mode forward of a blank image)."""
    was_training = backbone.training
    backbone.eval()
    device = next(backbone.parameters()).device
    dim = backbone(torch.zeros(1, 3, image_size, image_size, device=device)).shape[1]
    backbone.train(was_training)
    return int(dim)


class LinearProbe(nn.Module):
    """images N x 3 x H x W -> frozen backbone -> features N x D -> ``head`` -> logits N x C."""

    def __init__(self, backbone: nn.Module, head: nn.Linear):
        super().__init__()
        self.backbone = backbone.requires_grad_(False).eval()
        self.head = head

    def train(self, mode: bool = True) -> "LinearProbe":
        super().train(mode)
        self.backbone.eval()  # BN uses (and keeps) its running statistics; dropout stays off
        return self

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            features = self.backbone(images)  # N x D
        return self.head(features)


def cached_split_features(cfg: LinearEvalConfig, root) -> tuple:
    """(train, val, classes) features through the shared cache; the main process extracts first."""
    shared = TransferClsConfig(
        model=cfg.model,
        data=TransferDataConfig(name="imagefolder", root=str(root)),
        features=cfg.features,
        output_dir=cfg.train.output_dir,
    )
    extract = SplitFeatures(shared)
    imagenet_split(root, "val")  # the clear error for a missing val folder, before any extraction
    if du.is_main_process():
        train, val = extract("train"), extract("val")
    du.barrier()
    if not du.is_main_process():  # read what the main process cached (extract again when there is no cache)
        train, val = extract("train"), extract("val")
    return train, val, extract.classes


def run_linear_probe(cfg: LinearEvalConfig, resume: bool = False, overwrite: bool = False) -> dict:
    """Train and evaluate the probe of ``cfg``; writes ``<output_dir>/linear_eval.json`` and returns it.
    A run already in the folder is continued (``resume``) or started over (``overwrite``) only when
    asked, and the folder has one writer at a time (:func:`.outputs.evaluation_folder`)."""
    with evaluation_folder(cfg, "linear_eval", resume, overwrite):
        return _linear_probe(cfg, resume)


def _linear_probe(cfg: LinearEvalConfig, resume: bool) -> dict:
    du.init_from_env()
    out = start_output(cfg, cfg.train.output_dir)
    root = prepare_root(cfg.data, out)
    m, f = cfg.model, cfg.features
    if f.cached:
        train_features, val_features, classes = cached_split_features(cfg, root)
        head = linear_head(train_features.features.shape[1], len(classes), cfg.train.seed)
        model, arch = head, m.arch
        train_set, val_set = KeyedFeatures(train_features), LabelledFeatures(val_features)
    else:
        train = imagenet_split(root, "train")
        val = imagenet_split(root, "val", FeatureTransform(f.resize, f.crop, tuple(m.mean), tuple(m.std)).build())
        classes = train.classes
        backbone, arch = load_backbone(
            m.weights, m.arch, m.layout, m.allow_unsafe_pickle, m.seed, unsafe_option=MODEL_UNSAFE_OPTION
        )
        head = linear_head(feature_dim(backbone, cfg.data.train_crop), len(classes), cfg.train.seed)
        model = LinearProbe(backbone, head)
        train_set, val_set = SeededLabelled(train, train_transform(cfg.data.train_crop, m.mean, m.std)), val
    job = TrainJob(
        model=model,
        trained=head,
        param_groups=[{"params": list(head.parameters()), "lr_scale": 1.0}],
        train_set=train_set,
        val_set=val_set,
        resume_key={
            "model": vars(m),
            "optim": vars(cfg.optim),
            "cached": f.cached,
            "resize": f.resize,
            "crop": f.crop,
            "train_crop": cfg.data.train_crop,
        },
    )
    num_workers = 0 if f.cached else cfg.data.num_workers
    fitted = fit(job, cfg.optim, cfg.train, num_workers, resume, desc="linear probe")
    return write_result(
        out,
        "linear_eval",
        {
            "model": model_name(cfg),
            "weights": m.weights,
            "arch": arch,
            "data_root": str(root),
            "num_classes": len(classes),
            "train_images": len(train_set),
            "val_images": len(val_set),
            "features_cached": f.cached,
            **fitted,
        },
        cfg,
    )

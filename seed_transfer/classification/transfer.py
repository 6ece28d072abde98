"""Classification transfer of one checkpoint on one dataset: features -> C sweep + kNN + few-shot -> JSON.

result = run_cls_transfer(load_config(TransferClsConfig, "configs/transfer/cls/linear.yaml", [...]))
"""

import json
import logging
import time
from pathlib import Path

import numpy as np
import torch

from seed_core.config import ConfigError, resolve_path, to_dict
from seed_core.run_info import code_version

from ..backbones import checkpoint_fingerprint, is_random, load_backbone, require_weights, weights_name
from ..datasets import build_dataset
from .features import Features, FeatureTransform, cache_key, cached_features, extract_features
from .fewshot import Episodes, prototype_accuracy, sample_episodes
from .knn import knn_predict
from .linear import default_c_grid, linear_transfer
from .metrics import score
from .schema import MODEL_UNSAFE_OPTION, FewShotConfig, TransferClsConfig

log = logging.getLogger(__name__)


def model_name(cfg: TransferClsConfig) -> str:
    if cfg.model.name:
        return cfg.model.name
    if is_random(cfg.model.weights):
        return f"random-{cfg.model.arch}"
    return weights_name(cfg.model.weights)


def result_path(cfg: TransferClsConfig) -> Path:
    """Where :func:`run_cls_transfer` writes the result of ``cfg``: ``<output_dir>/<model>__<dataset>.json``."""
    return Path(cfg.output_dir) / f"{model_name(cfg)}__{cfg.data.name}.json"


def carve_val(n: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, val) of a fixed random ``fraction`` of ``n`` samples held out for validation."""
    perm = np.random.default_rng(seed).permutation(n)
    n_val = max(1, round(fraction * n))
    return np.sort(perm[n_val:]), np.sort(perm[:n_val])


def _subset(features: Features, idx: np.ndarray) -> Features:
    return Features(features.features[idx], features.targets[idx])


def split_features(cfg: TransferClsConfig, extract) -> dict[str, Features]:
    """train / val / test features: the official val split, or ``val_fraction`` of train."""
    test = extract("test")
    train = extract("train")
    dataset_has_val = extract.has_official_val
    if dataset_has_val:
        return {"train": train, "val": extract("val"), "test": test}
    train_idx, val_idx = carve_val(len(train.targets), cfg.data.val_fraction, cfg.data.split_seed)
    return {"train": _subset(train, train_idx), "val": _subset(train, val_idx), "test": test}


class SplitFeatures:
    """Features of one split of the configured dataset, through the on-disk cache."""

    def __init__(self, cfg: TransferClsConfig):
        self.cfg = cfg
        self.transform = FeatureTransform(
            cfg.features.resize, cfg.features.crop, tuple(cfg.model.mean), tuple(cfg.model.std)
        )
        self.backbone, self.arch = None, cfg.model.arch
        self.fingerprint = checkpoint_fingerprint(cfg.model.weights, cfg.model.arch, cfg.model.seed)
        self.root = resolve_path(cfg.data.root) or "."
        # The train split tells the metric, classes and val availability; kept for extraction,
        # so a large split (CIFAR pickles, SUN397 partitions) is read once.
        self._train = build_dataset(cfg.data.name, self.root, "train")
        self.has_official_val = self._train.has_official_val
        self.metric, self.classes = self._train.info.metric, self._train.classes
        self.seconds, self.cache_hits = 0.0, []

    def _backbone(self):
        if self.backbone is None:
            m = self.cfg.model
            self.backbone, self.arch = load_backbone(
                m.weights, m.arch, m.layout, m.allow_unsafe_pickle, m.seed, unsafe_option=MODEL_UNSAFE_OPTION
            )
        return self.backbone

    def resolved_arch(self) -> str:
        """The architecture: the configured one, else what the checkpoint records (read from the
        file even when every split came from the feature cache)."""
        if self.arch is None:
            self._backbone()
        return self.arch

    def __call__(self, split: str) -> Features:
        cfg = self.cfg
        dataset = self._train if split == "train" else build_dataset(cfg.data.name, self.root, split)
        # arch is part of the key; for "arch from the checkpoint" the content hash already pins it
        key = cache_key(
            self.fingerprint,
            cfg.model.arch or "from-checkpoint",
            cfg.data.name,
            self.root,
            split,
            self.transform,
            dataset.content_digest(),
        )

        def compute():
            tic = time.perf_counter()
            dataset.transform = self.transform.build()
            out = extract_features(
                self._backbone(),
                dataset,
                cfg.features.batch_size,
                cfg.features.num_workers,
                amp=cfg.features.amp,
                desc=f"{cfg.data.name} {split}",
            )
            self.seconds += time.perf_counter() - tic
            return out

        features, hit = cached_features(key, cfg.features.cache_dir, compute)
        self.cache_hits.append(hit)
        return features


def run_cls_transfer(cfg: TransferClsConfig) -> dict:
    """Run the protocol and write ``<output_dir>/<model>__<dataset>.json``; returns the result."""
    require_weights(cfg.model.weights, "model.weights")
    extract = SplitFeatures(cfg)
    splits = split_features(cfg, extract)
    result = {
        "model": model_name(cfg),
        "weights": cfg.model.weights,
        "arch": extract.resolved_arch(),
        "dataset": cfg.data.name,
        "metric": extract.metric,
        "num_classes": len(extract.classes),
        "sizes": {k: int(len(v.targets)) for k, v in splits.items()},
        "feature_dim": int(splits["train"].features.shape[1]),
        "seconds": {"features": round(extract.seconds, 3)},
        "features_cached": all(extract.cache_hits),
    }
    if cfg.fewshot.enabled:  # drawn before the sweep, so that too small classes fail fast
        pool = fewshot_pool(splits, cfg.fewshot.split)
        episodes = fewshot_episodes(cfg.fewshot, pool.targets, cfg.data.name)
    if cfg.linear.enabled:
        lin = cfg.linear
        sweep = linear_transfer(
            splits["train"].features,
            splits["train"].targets,
            splits["val"].features,
            splits["val"].targets,
            splits["test"].features,
            splits["test"].targets,
            extract.metric,
            c_grid=default_c_grid(lin.num_c, lin.wd_min_exp, lin.wd_max_exp),
            n_jobs=lin.n_jobs,
            max_iter=lin.max_iter,
            standardize=lin.standardize,
        )
        if not any(sweep.determined) and not lin.standardize:
            _warn_undetermined(splits["train"].features)
        result["linear"] = {
            "score": sweep.test_score,
            "best_c": sweep.best_c,
            "val_curve": [[c, s] for c, s in sweep.val_curve],
            "determined": sweep.determined,
            "selection": sweep.selection,
        }
        result["seconds"].update({f"linear_{k}": round(v, 3) for k, v in sweep.seconds.items()})
    if cfg.knn.enabled:
        result["knn"] = _knn(cfg, splits, extract.metric, len(extract.classes))
    if cfg.fewshot.enabled:
        tic = time.perf_counter()
        result["fewshot"] = _fewshot(cfg.fewshot, pool, episodes)
        result["seconds"]["fewshot"] = round(time.perf_counter() - tic, 3)
    result["config"] = to_dict(cfg)
    result["code"] = code_version()
    out = result_path(cfg)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    result["path"] = str(out)
    return result


def _warn_undetermined(features: np.ndarray) -> None:
    """No C gave a determined fit on raw features: say how small they are and what to set."""
    spread = float(np.median(features.std(axis=0))) if len(features) > 1 else float("nan")
    log.warning(
        "linear: no C gave a determined fit on raw features (median per-dimension std over the training "
        "images: %.3g); if that is tiny, as for a random or briefly trained MobileNetV3, set "
        "linear.standardize=true to z-score the features before the sweep",
        spread,
    )


def _knn(cfg: TransferClsConfig, splits: dict[str, Features], metric: str, num_classes: int) -> dict:
    """kNN with train+val as the memory bank, scored on test with the dataset's metric."""
    train = np.concatenate([splits["train"].features, splits["val"].features])
    labels = np.concatenate([splits["train"].targets, splits["val"].targets])
    if labels.ndim == 2:
        return {"score": None, "note": "kNN is single-label; not run on a multi-label dataset"}
    tic = time.perf_counter()
    pred, _ = knn_predict(
        torch.from_numpy(train),
        torch.from_numpy(labels),
        torch.from_numpy(splits["test"].features),
        k=cfg.knn.k,
        temperature=cfg.knn.temperature,
        num_classes=num_classes,
    )
    return {
        "score": score(metric, pred.numpy(), splits["test"].targets),
        "k": cfg.knn.k,
        "temperature": cfg.knn.temperature,
        "seconds": round(time.perf_counter() - tic, 3),
    }


def fewshot_pool(splits: dict[str, Features], split: str) -> Features:
    """The features few-shot episodes draw from: ``all`` = train + val + test, ``trainval`` or ``test``."""
    names = {"all": ("train", "val", "test"), "trainval": ("train", "val"), "test": ("test",)}[split]
    return Features(
        np.concatenate([splits[n].features for n in names]), np.concatenate([splits[n].targets for n in names])
    )


def fewshot_episodes(cfg: FewShotConfig, targets: np.ndarray, dataset: str) -> dict[int, Episodes]:
    """The episodes of each K in ``cfg.shots``: a function of the labels and ``cfg`` alone, so every
    model on this dataset gets the same ones; empty for multi-label targets."""
    if targets.ndim == 2:
        return {}
    try:
        return {k: sample_episodes(targets, cfg.n_way, k, cfg.n_query, cfg.episodes, cfg.seed) for k in cfg.shots}
    except ValueError as err:  # too few eligible classes: a config problem (fewshot.n_query, fewshot.n_way)
        raise ConfigError(f"fewshot on {dataset} ({cfg.split} images): {err}") from None


def _fewshot(cfg: FewShotConfig, pool: Features, episodes: dict[int, Episodes]) -> dict:
    """``{"<k>shot": {score, ci95, episodes, n_way, k_shot, n_query, per_episode, ...}}`` (percent)."""
    if not episodes:
        return {"note": "few-shot episodes are single-label; not run on a multi-label dataset"}
    out = {}
    for k, shot_episodes in episodes.items():
        result = prototype_accuracy(pool.features, pool.targets, shot_episodes, normalize=cfg.normalize)
        out[f"{k}shot"] = {**result.to_dict(), "split": cfg.split, "seed": cfg.seed, "normalize": cfg.normalize}
    return out

"""kNN evaluation on an ImageNet-style folder (the SEED/InstDisc/DINO protocol):
train features are the memory bank, each val image votes with its k nearest neighbours
(cosine similarity, weights exp(s / T)); top-1 and top-5 accuracy.

Features come through the same on-disk cache as linear transfer (``features.cache_dir``),
so kNN and a later linear run on the same checkpoint extract them once. The similarity
search is chunked over val images, so an ImageNet-size bank (1.28M x 2048) fits.
"""

import json
import time
from pathlib import Path

import torch

from seed_core.config import to_dict
from seed_core.errors import MissingFile
from seed_core.run_info import code_version

from ..classification.knn import knn_predict
from ..classification.schema import TransferClsConfig
from ..classification.transfer import SplitFeatures, model_name


def topk_accuracy(class_scores: torch.Tensor, labels: torch.Tensor, k: int) -> float:
    """Percent of rows whose label is among the k highest scores."""
    k = min(k, class_scores.shape[1])
    return (class_scores.topk(k, dim=1).indices == labels[:, None]).any(dim=1).float().mean().item() * 100


def run_knn_eval(cfg: TransferClsConfig, chunk_size: int = 1024) -> dict:
    """Bank = ``train`` split, queries = ``val`` split of ``cfg.data``; writes ``<output_dir>/<model>__knn.json``."""
    features = SplitFeatures(cfg)
    if not features.has_official_val:
        raise MissingFile(
            f"kNN evaluation needs an ImageNet-style val folder: expected "
            f"{Path(features.root) / 'val'}/<class>/<image> beside train/"
        )
    bank, queries = features("train"), features("val")
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    tic = time.perf_counter()
    _, scores = knn_predict(
        torch.from_numpy(bank.features).to(device),
        torch.from_numpy(bank.targets).to(device),
        torch.from_numpy(queries.features),
        k=cfg.knn.k,
        temperature=cfg.knn.temperature,
        num_classes=len(features.classes),
        chunk_size=chunk_size,
    )
    labels = torch.from_numpy(queries.targets).to(scores.device)
    result = {
        "model": model_name(cfg),
        "weights": cfg.model.weights,
        "arch": features.arch,
        "dataset": cfg.data.name,
        "bank": len(bank.targets),
        "queries": len(queries.targets),
        "knn": {
            "top1": topk_accuracy(scores, labels, 1),
            "top5": topk_accuracy(scores, labels, 5),
            "k": cfg.knn.k,
            "temperature": cfg.knn.temperature,
        },
        "seconds": {"features": round(features.seconds, 3), "knn": round(time.perf_counter() - tic, 3)},
        "features_cached": all(features.cache_hits),
        "config": to_dict(cfg),
        "code": code_version(),
    }
    out = Path(cfg.output_dir) / f"{result['model']}__knn.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    return {**result, "path": str(out)}

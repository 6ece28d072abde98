"""Weighted k-nearest-neighbour classification on frozen features.

The protocol of InstDisc (Wu et al., CVPR 2018, Sec. 3.4) as implemented in DINO's
``eval_knn.py``: cosine similarity s_j between a test feature and every train feature,
the k most similar train features vote for their class with weight exp(s_j / T), and the
class with the largest total vote wins.
"""

import torch
import torch.nn.functional as F

from seed_core.config import ConfigError


@torch.no_grad()
def knn_predict(
    train_feats: torch.Tensor,
    train_labels: torch.Tensor,
    test_feats: torch.Tensor,
    k: int = 20,
    temperature: float = 0.07,
    num_classes: int | None = None,
    chunk_size: int = 1024,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Class votes of the k nearest train features (cosine similarity) for each test feature.

    Runs on ``train_feats.device``; test features are moved there one chunk at a time, so
    at most ``chunk_size x N`` similarities exist at once. Arithmetic is in (at least)
    float32: exp(1 / 0.07) = 1.6e6 overflows float16.

    Args:
        train_feats: N x D train features (normalised here; need not be unit length).
        train_labels: (N,) class indices in [0, num_classes).
        test_feats: M x D test features.
        k: number of neighbours, 1 <= k <= N.
        temperature: T > 0 of the vote weights exp(similarity / T).
        num_classes: C; defaults to max(train_labels) + 1.
        chunk_size: test rows per similarity block.

    Returns:
        pred: (M,) int64, argmax of the votes (lowest class index on a tie).
        class_scores: M x C summed vote weights.
    """
    if train_feats.ndim != 2 or test_feats.ndim != 2 or train_feats.shape[1] != test_feats.shape[1]:
        raise ValueError(
            f"features must be N x D and M x D, got train {tuple(train_feats.shape)}, test {tuple(test_feats.shape)}"
        )
    if train_labels.shape != (train_feats.shape[0],):
        raise ValueError(f"train_labels must be ({train_feats.shape[0]},), got {tuple(train_labels.shape)}")
    num_train = train_feats.shape[0]
    if not 1 <= k <= num_train:
        raise ConfigError(  # a config value (knn.k) that this dataset cannot take: one line from the tools
            f"knn.k={k}: k must be in [1, N] with N = {num_train} train features; lower knn.k"
        )
    if temperature <= 0 or chunk_size < 1:
        raise ValueError(f"need temperature > 0 and chunk_size >= 1, got {temperature}, {chunk_size}")
    if num_classes is None:
        num_classes = int(train_labels.max()) + 1
    if int(train_labels.min()) < 0 or int(train_labels.max()) >= num_classes:
        raise ValueError(
            f"train_labels must lie in [0, {num_classes}), got [{int(train_labels.min())}, {int(train_labels.max())}]"
        )

    device = train_feats.device
    dtype = torch.promote_types(train_feats.dtype, torch.float32)
    train_unit = F.normalize(train_feats.to(dtype), dim=1)  # N x D
    train_labels = train_labels.to(device=device, dtype=torch.long)
    preds, scores = [], []
    for start in range(0, test_feats.shape[0], chunk_size):
        test_unit = F.normalize(test_feats[start : start + chunk_size].to(device=device, dtype=dtype), dim=1)  # B x D
        sims, idx = (test_unit @ train_unit.T).topk(k, dim=1)  # B x k each
        votes = torch.zeros(test_unit.shape[0], num_classes, device=device, dtype=dtype)  # B x C
        votes.scatter_add_(1, train_labels[idx], (sims / temperature).exp())
        preds.append(votes.argmax(dim=1))
        scores.append(votes)
    if not scores:  # M = 0
        return torch.zeros(0, dtype=torch.long, device=device), torch.zeros(0, num_classes, dtype=dtype, device=device)
    return torch.cat(preds), torch.cat(scores)


def knn_classify(train_feats, train_labels, test_feats, test_labels, **knn_kwargs) -> float:
    """Top-1 accuracy (percent) of :func:`knn_predict` against ``test_labels`` (M,)."""
    pred, _ = knn_predict(train_feats, train_labels, test_feats, **knn_kwargs)
    if pred.numel() == 0:
        raise ValueError("no test features to score")
    if test_labels.shape != pred.shape:
        raise ValueError(f"test_labels must be ({pred.shape[0]},), got {tuple(test_labels.shape)}")
    return 100.0 * (pred == test_labels.to(pred.device)).double().mean().item()

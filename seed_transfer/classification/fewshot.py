"""Few-shot transfer on frozen features: prototypical N-way K-shot episodes (Ericsson et al., CVPR 2021).

The few-shot protocol of "How Well Do Self-Supervised Models Transfer?" (``few_shot.py``
of their code), Prototypical Networks (Snell et al., NeurIPS 2017) on a frozen backbone:
an episode draws N classes, K support and Q query images per class; each class's
prototype is the mean of its K support features, and a query gets the class of the
nearest prototype in squared Euclidean distance. The score is the query accuracy
averaged over the episodes (600 in the paper), with the 95% confidence interval
1.96 * std / sqrt(episodes) (std over episodes, ddof = 0, as in their code). Episodes
draw from all images of the dataset (train, val and test), as theirs do.

Unlike their code, the features are the project's cached frozen features (batch norm in
eval mode, the transfer transform): their backbone runs in train mode, so its batch norm
uses each episode's batch statistics.

Episodes are a pure function of (targets, n_way, k_shot, n_query, n_episodes, seed), so
every model evaluated on the same dataset sees the same episodes, and the difference
between two models can be paired episode by episode (``paired_difference``).

    episodes = sample_episodes(targets, n_way=5, k_shot=5, n_query=15, n_episodes=600, seed=0)
    result = prototype_accuracy(features, targets, episodes)   # result.mean, result.ci95
"""

from dataclasses import dataclass

import numpy as np

from seed_core.errors import DataError

Z95 = 1.96  # two-sided 95% normal quantile


@dataclass(frozen=True)
class Episodes:
    """Index arrays into the feature rows: ``classes`` E x N labels, ``support`` E x N x K, ``query`` E x N x Q.

    Row j of episode e belongs to class ``classes[e, j]``; its position j is the label the
    prototype classifier predicts.
    """

    classes: np.ndarray
    support: np.ndarray
    query: np.ndarray

    def __len__(self) -> int:
        return len(self.classes)

    @property
    def n_way(self) -> int:
        return self.classes.shape[1]

    @property
    def k_shot(self) -> int:
        return self.support.shape[2]

    @property
    def n_query(self) -> int:
        return self.query.shape[2]


@dataclass(frozen=True)
class FewShotResult:
    """Per-episode query accuracies (percent) of one N-way K-shot evaluation."""

    n_way: int
    k_shot: int
    n_query: int
    per_episode: np.ndarray  # (E,) percent

    @property
    def mean(self) -> float:
        return float(np.mean(self.per_episode))

    @property
    def ci95(self) -> float:
        """Half-width of the 95% confidence interval of the mean: 1.96 * std / sqrt(E)."""
        return confidence_interval(self.per_episode)

    def to_dict(self) -> dict:
        return {
            "score": self.mean,
            "ci95": self.ci95,
            "episodes": len(self.per_episode),
            "n_way": self.n_way,
            "k_shot": self.k_shot,
            "n_query": self.n_query,
            "per_episode": self.per_episode.tolist(),
        }


def confidence_interval(values: np.ndarray) -> float:
    """1.96 * std(values) / sqrt(len(values)), std with ddof = 0 (Ericsson et al.'s ``few_shot.py``)."""
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 1 or len(values) == 0:
        raise ValueError(f"need a non-empty 1-D array of per-episode values, got shape {values.shape}")
    return float(Z95 * values.std() / np.sqrt(len(values)))


def eligible_classes(targets: np.ndarray, min_images: int) -> np.ndarray:
    """Sorted labels with at least ``min_images`` images (a class needs K + Q to take part in an episode)."""
    labels, counts = np.unique(targets, return_counts=True)
    return labels[counts >= min_images]


def sample_episodes(targets, n_way: int, k_shot: int, n_query: int, n_episodes: int, seed: int = 0) -> Episodes:
    """``n_episodes`` N-way K-shot episodes drawn from the single-label ``targets`` (M,).

    Each episode draws ``n_way`` distinct classes uniformly among the eligible ones (at
    least ``k_shot + n_query`` images), then ``k_shot + n_query`` distinct images of each
    class, the first ``k_shot`` as support and the rest as queries. Classes with fewer
    images never take part; fewer than ``n_way`` eligible classes is an error that names
    the counts. The draw depends only on the arguments (``np.random.default_rng(seed)``).
    """
    targets = np.asarray(targets)
    if targets.ndim != 1:
        raise ValueError(f"few-shot episodes need single-label targets (M,), got shape {targets.shape}")
    if min(n_way, k_shot, n_query, n_episodes) < 1 or n_way < 2:
        raise ValueError(
            f"need n_way >= 2 and k_shot, n_query, n_episodes >= 1; got n_way={n_way}, "
            f"k_shot={k_shot}, n_query={n_query}, n_episodes={n_episodes}"
        )
    per_class = k_shot + n_query
    eligible = eligible_classes(targets, per_class)
    if len(eligible) < n_way:
        counts = np.sort(np.unique(targets, return_counts=True)[1])[::-1]
        raise DataError(
            f"{n_way}-way {k_shot}-shot episodes with {n_query} queries need {n_way} classes with at "
            f"least {per_class} images; {len(eligible)} of {len(counts)} classes have that many "
            f"(the largest: {counts[:n_way].tolist()} images); lower n_query or n_way"
        )
    members = {label: np.flatnonzero(targets == label) for label in eligible}
    rng = np.random.default_rng(seed)
    classes = np.stack([rng.choice(eligible, size=n_way, replace=False) for _ in range(n_episodes)])  # E x N
    draws = np.stack(
        [np.stack([rng.choice(members[label], size=per_class, replace=False) for label in row]) for row in classes]
    )  # E x N x (K + Q)
    return Episodes(classes, draws[:, :, :k_shot], draws[:, :, k_shot:])


def prototype_predictions(support: np.ndarray, query: np.ndarray) -> np.ndarray:
    """Nearest-prototype class positions of the queries of one episode.

    Args:
        support: N x K x D support features.
        query: M x D query features.

    Returns:
        (M,) index in [0, N) of the prototype (mean of a class's K support features) at the
        smallest squared Euclidean distance; the lowest index on a tie.
    """
    prototypes = support.mean(axis=1)  # N x D
    distances = ((query[:, None, :] - prototypes[None, :, :]) ** 2).sum(axis=-1)  # M x N
    return distances.argmin(axis=1)


def prototype_accuracy(features, targets, episodes: Episodes, normalize: bool = False) -> FewShotResult:
    """Query accuracy (percent) of the prototype classifier in each episode.

    Args:
        features: M x D frozen features, the rows ``episodes`` index.
        targets: (M,) labels the episodes were drawn from (checked against ``episodes.classes``).
        episodes: from :func:`sample_episodes`.
        normalize: L2-normalise every feature first (prototypes are then means of unit
            vectors); off in Ericsson et al.'s protocol.
    """
    features, targets = np.asarray(features, dtype=np.float64), np.asarray(targets)
    if features.ndim != 2 or len(features) != len(targets):
        raise ValueError(f"features must be M x D for M = {len(targets)} targets, got shape {features.shape}")
    if not np.array_equal(targets[episodes.support[:, :, 0]], episodes.classes):
        raise ValueError("the episodes were drawn from other targets than the ones given")
    if normalize:
        features = features / np.maximum(np.linalg.norm(features, axis=1, keepdims=True), 1e-12)
    n_way, n_query = episodes.n_way, episodes.n_query
    query_labels = np.repeat(np.arange(n_way), n_query)  # (N * Q,) class positions, row-major like query
    accuracy = np.empty(len(episodes))
    for e in range(len(episodes)):
        predicted = prototype_predictions(features[episodes.support[e]], features[episodes.query[e].reshape(-1)])
        accuracy[e] = 100.0 * np.mean(predicted == query_labels)
    return FewShotResult(n_way, episodes.k_shot, n_query, accuracy)


def paired_difference(per_episode_a, per_episode_b) -> tuple[float, float]:
    """Mean and 95% CI half-width of the per-episode accuracy difference a - b of two models on the same episodes."""
    a, b = np.asarray(per_episode_a, dtype=np.float64), np.asarray(per_episode_b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"paired differences need the same episodes, got {a.shape} and {b.shape} accuracies")
    difference = a - b
    return float(difference.mean()), confidence_interval(difference)

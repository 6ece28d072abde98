import math

import pytest
import torch
import torch.nn.functional as F

from seed_transfer.classification.knn import knn_classify, knn_predict


def knn_reference(train, labels, test, k, temperature, num_classes):
    """One test point at a time, straight from the definition (InstDisc / DINO eval_knn)."""
    preds, all_votes = [], []
    for q in test:
        sims = [float(F.cosine_similarity(q, t, dim=0)) for t in train]
        nearest = sorted(range(len(train)), key=lambda j: -sims[j])[:k]
        votes = [0.0] * num_classes
        for j in nearest:
            votes[int(labels[j])] += math.exp(sims[j] / temperature)
        preds.append(max(range(num_classes), key=lambda c: (votes[c], -c)))  # lowest index on a tie
        all_votes.append(votes)
    return torch.tensor(preds), torch.tensor(all_votes, dtype=torch.float64)


def random_problem(n=40, m=11, dim=8, classes=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    train = torch.randn(n, dim, generator=g, dtype=torch.float64) * 3  # not unit length on purpose
    test = torch.randn(m, dim, generator=g, dtype=torch.float64)
    labels = torch.randint(0, classes, (n,), generator=g)
    return train, labels, test


@pytest.mark.parametrize("chunk_size", [3, 11, 1024])
@pytest.mark.parametrize("k", [1, 5, 40])
@pytest.mark.parametrize("temperature", [0.07, 0.5])
def test_knn_matches_bruteforce(chunk_size, k, temperature):
    train, labels, test = random_problem()
    pred, votes = knn_predict(train, labels, test, k=k, temperature=temperature, num_classes=5, chunk_size=chunk_size)
    ref_pred, ref_votes = knn_reference(train, labels, test, k, temperature, num_classes=5)
    assert votes.shape == (11, 5)
    torch.testing.assert_close(votes, ref_votes, rtol=1e-9, atol=1e-9)
    assert torch.equal(pred, ref_pred)


def test_knn_float32_and_default_num_classes():
    train, labels, test = random_problem(seed=1)
    pred, votes = knn_predict(train.float(), labels, test.float(), k=7, chunk_size=4)
    ref_pred, ref_votes = knn_reference(train, labels, test, 7, 0.07, num_classes=int(labels.max()) + 1)
    assert votes.dtype == torch.float32
    torch.testing.assert_close(votes.double(), ref_votes, rtol=1e-4, atol=1e-4)
    assert torch.equal(pred, ref_pred)


def test_knn_classify_on_separated_clusters():
    g = torch.Generator().manual_seed(2)
    centres = F.normalize(torch.randn(3, 16, generator=g), dim=1) * 10
    labels = torch.arange(3).repeat(20)
    train = centres[labels] + torch.randn(60, 16, generator=g)
    test_labels = torch.arange(3).repeat(5)
    test = centres[test_labels] + torch.randn(15, 16, generator=g)
    assert knn_classify(train, labels, test, test_labels, k=5) == pytest.approx(100.0)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(k=41), r"k must be in \[1, N\]"),
        (dict(k=0), r"k must be in \[1, N\]"),
        (dict(temperature=0.0), "temperature"),
        (dict(num_classes=2), "train_labels must lie"),
    ],
)
def test_knn_bad_arguments(kwargs, message):
    train, labels, test = random_problem()
    with pytest.raises(ValueError, match=message):
        knn_predict(train, labels, test, **kwargs)


def test_knn_shape_mismatch():
    train, labels, test = random_problem()
    with pytest.raises(ValueError, match="features must be"):
        knn_predict(train, labels, test[:, :4])
    with pytest.raises(ValueError, match="train_labels must be"):
        knn_predict(train, labels[:-1], test)


def test_a_k_larger_than_the_bank_is_a_config_error_naming_the_key():
    from seed_core.config import ConfigError

    train, labels, test = random_problem()
    with pytest.raises(ConfigError, match=r"knn.k=41: .* lower knn.k"):
        knn_predict(train, labels, test, k=41)

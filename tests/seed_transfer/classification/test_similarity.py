import numpy as np
import pytest

from seed_transfer.classification.similarity import linear_cka, neighbour_overlap


def _hsic_cka(x, y):
    """CKA through the Gram matrices and the centring matrix H (the paper's definition)."""
    n = len(x)
    h = np.eye(n) - np.ones((n, n)) / n
    kx, ky = h @ (x @ x.T) @ h, h @ (y @ y.T) @ h
    return np.sum(kx * ky) / np.sqrt(np.sum(kx * kx) * np.sum(ky * ky))


def test_linear_cka_equals_the_gram_matrix_definition():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(40, 7)), rng.normal(size=(40, 13))
    y[:, :7] += 2 * x  # partly shared
    assert linear_cka(x, y) == pytest.approx(_hsic_cka(x, y), rel=1e-10)
    assert 0.0 < linear_cka(x, y) < 1.0


def test_linear_cka_is_one_up_to_rotation_scale_and_shift():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(30, 5))
    rotation, _ = np.linalg.qr(rng.normal(size=(5, 5)))
    assert linear_cka(x, 3.0 * x @ rotation + 4.0) == pytest.approx(1.0)
    # not invariant to an anisotropic rescaling
    assert linear_cka(x, x * np.array([10.0, 1, 1, 1, 1])) < 0.99


def test_linear_cka_of_independent_features_is_small():
    rng = np.random.default_rng(2)
    assert linear_cka(rng.normal(size=(2000, 4)), rng.normal(size=(2000, 4))) < 0.02


def _on_circle(degrees):
    rad = np.deg2rad(degrees)
    return np.stack([np.cos(rad), np.sin(rad)], axis=1)


def test_neighbour_overlap_counts_shared_neighbours():
    x = _on_circle([0, 10, 90, 100])  # cosine pairs: (0, 1) and (2, 3)
    assert neighbour_overlap(x, x, k=1) == 1.0
    assert neighbour_overlap(x, 7.0 * x, k=2) == 1.0  # cosine: scale-free
    y = _on_circle([0, 90, 100, 10])  # pairs the images the other way: (0, 3) and (1, 2)
    assert neighbour_overlap(x, y, k=1) == 0.0
    # two nearest of images 0..3 under x: {1,2} {0,2} {3,1} {2,1}; under y: {3,1} {2,3} {1,3} {0,1}
    assert neighbour_overlap(x, y, k=2) == (1 + 1 + 2 + 1) / 8


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: linear_cka(np.zeros((3, 2)), np.ones((4, 2))), "same images"),
        (lambda: linear_cka(np.ones((3, 2)), np.ones((3, 2))), "constant"),
        (lambda: linear_cka(np.ones(3), np.ones(3)), "N x D"),
        (lambda: neighbour_overlap(np.eye(3), np.eye(3), k=3), "k must be"),
    ],
)
def test_bad_input_is_refused(call, message):
    with pytest.raises(ValueError, match=message):
        call()

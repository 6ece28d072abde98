"""How alike two representations of the same images are: what a distilled student kept of its teacher.

- :func:`linear_cka`: linear centred kernel alignment (Kornblith et al., ICML 2019), in [0, 1];
  invariant to rotations and isotropic scaling of either representation, and defined between
  representations of different widths (a 512-d student against a 1280-d teacher).
- :func:`neighbour_overlap`: for each image, the fraction of its ``k`` nearest neighbours
  (cosine) under one representation that are also among its ``k`` nearest under the other,
  averaged over the images: the similarity *ranking* SEED's loss asks the student to copy.
"""

import numpy as np


def _as_matrix(x, name: str) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"{name} must be N x D features, got shape {x.shape}")
    return x


def _paired(x, y) -> tuple[np.ndarray, np.ndarray]:
    x, y = _as_matrix(x, "x"), _as_matrix(y, "y")
    if len(x) != len(y):
        raise ValueError(f"x and y must describe the same images, got {len(x)} and {len(y)} rows")
    if len(x) < 2:
        raise ValueError("need at least 2 images to compare representations")
    return x, y


def linear_cka(x, y) -> float:
    """||Yc^T Xc||_F^2 / (||Xc^T Xc||_F ||Yc^T Yc||_F) with Xc, Yc the column-centred features."""
    x, y = _paired(x, y)
    x, y = x - x.mean(0), y - y.mean(0)
    cross = np.linalg.norm(y.T @ x) ** 2
    norms = np.linalg.norm(x.T @ x) * np.linalg.norm(y.T @ y)
    if norms == 0:
        raise ValueError("a representation is constant over the images: CKA is undefined")
    return float(cross / norms)


def _neighbours(x: np.ndarray, k: int) -> np.ndarray:
    unit = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    sim = unit @ unit.T
    np.fill_diagonal(sim, -np.inf)  # an image is not its own neighbour
    return np.argsort(-sim, axis=1, kind="stable")[:, :k]


def neighbour_overlap(x, y, k: int = 10) -> float:
    """Mean over images of |kNN_x(i) & kNN_y(i)| / k, cosine neighbours, the image itself excluded."""
    x, y = _paired(x, y)
    if not 1 <= k < len(x):
        raise ValueError(f"k must be in [1, {len(x) - 1}] for {len(x)} images, got {k}")
    nx, ny = _neighbours(x, k), _neighbours(y, k)
    shared = [len(np.intersect1d(a, b, assume_unique=True)) for a, b in zip(nx, ny)]
    return float(np.mean(shared) / k)

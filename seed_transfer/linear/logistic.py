"""Linear transfer on frozen features: logistic regression with C chosen on a validation split.

Protocol of Ericsson et al. ("How Well Do Self-Supervised Models Transfer?", CVPR 2021),
after Kornblith et al. (CVPR 2019), checked against the authors' ``linear.py``
(github.com/linusericsson/ssl-transfer, commit 4e9b9c2):

- scikit-learn ``LogisticRegression``, L-BFGS, L2 penalty on the weights (not the
  intercept); multinomial for single-label data, one binary classifier per class for
  VOC 2007 (``map11``; rows whose target is -1 are left out of that class's fit).
- C = 1 / wd for wd in ``np.logspace(-6, 5, 45)`` (:func:`default_c_grid`); each C is fit
  on train and scored on val; ties go to the largest C (their loop runs over increasing
  wd and keeps the first strict maximum).
- The chosen C is refit on train + val and scored once on test.
- Features are used as they come: their ``linear.py`` applies no ``StandardScaler`` (its
  ``--no-norm`` flag is about image normalisation), hence ``standardize=False``.
  Features are cast to float64, which sklearn 0.22 (their version) did for lbfgs.
- ``ConvergenceWarning`` is silenced, as they do.

Stopping rule. They keep sklearn's defaults, tol=1e-4 and max_iter=100, with sklearn
0.22, whose lbfgs objective is the *sum* of the per-sample losses + ||W||^2 / (2C).
sklearn >= 1.2 minimises the *mean* (the same objective divided by n), so the same
gtol of 1e-4 is n times looser and stops a fit after ~10-20 iterations, far from the
optimum (then the chosen C depends on how each fit was started). ``tol=None`` therefore
means 1e-4 / n for a fit on n rows: their stopping rule, expressed for today's sklearn.
``max_iter`` is 1000 (theirs: 100 per fit, but each fit warm-started from the last).
Even so, at very large C on separable features the fit stops where the mean-loss
gradient falls below tol, not at the (far away) optimum, so those fits depend on where
they started; the validation curve is only well defined where C is moderate.

Speed. :func:`plain_sklearn_sweep` is the naive reference: a fresh estimator per C,
cold start, one process. :func:`linear_transfer` minimises the same objectives with the
same estimator and stopping rule but (1) walks the C path from strong to weak
regularisation, each fit starting from the previous solutions (continued by a quadratic
in log C), the first from the C -> 0 optimum; (2) fits ``path_chunks`` contiguous pieces of
the path (or, for ``map11``, the classes) in parallel joblib worker processes; (3)
warm-starts the refit from the validation fit at the chosen C.
"""

import time
import warnings
from dataclasses import dataclass, field

import numpy as np
from joblib import Parallel, delayed, effective_n_jobs
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression

from ..metrics import MULTI_LABEL_METRICS, check_metric, score

DEFAULT_MAX_ITER = 1000
DEFAULT_PATH_CHUNKS = 4


@dataclass
class SweepResult:
    best_c: float
    val_curve: list[tuple[float, float]]  # (C, validation score) for every C, in grid order
    test_score: float  # percent, after the refit on train + val at best_c
    metric: str
    seconds: dict[str, float]  # {"sweep": ..., "refit": ...}
    iterations: dict[str, int] = field(default_factory=dict)  # lbfgs iterations, and fits at max_iter


def default_c_grid(num: int = 45, wd_min_exp: float = -6, wd_max_exp: float = 5) -> np.ndarray:
    """C = 1 / wd for wd in logspace(wd_min_exp, wd_max_exp, num): 1e6 down to 1e-5 by default."""
    return 1.0 / np.logspace(wd_min_exp, wd_max_exp, num)


# ----------------------------------------------------------------------------- inputs


def _prepare(train_x, train_y, val_x, val_y, test_x, test_y, metric, c_grid, standardize):
    """Validate and cast: features (N, D) float64, labels (N,) or (N, C) in {1, 0, -1}."""
    check_metric(metric)
    multi_label = metric in MULTI_LABEL_METRICS
    c_grid = default_c_grid() if c_grid is None else np.asarray(c_grid, dtype=np.float64).ravel()
    if c_grid.size == 0:
        raise ValueError("c_grid is empty")
    if not (np.isfinite(c_grid).all() and (c_grid > 0).all()):
        raise ValueError(f"c_grid must hold finite C > 0, got {c_grid.tolist()}")
    splits = {}
    for name, x, y in (("train", train_x, train_y), ("val", val_x, val_y), ("test", test_x, test_y)):
        x, y = np.ascontiguousarray(x, dtype=np.float64), np.asarray(y)
        if x.ndim != 2 or len(x) == 0:
            raise ValueError(f"{name}_x must be a non-empty (N, D) array, got shape {x.shape}")
        if len(y) != len(x):
            raise ValueError(f"{name}_x has {len(x)} rows but {name}_y has {len(y)}")
        if y.ndim != (2 if multi_label else 1):
            raise ValueError(
                f"metric {metric!r} needs {name}_y of shape {'(N, C)' if multi_label else '(N,)'}, got {y.shape}"
            )
        if multi_label and not np.isin(y, (-1, 0, 1)).all():
            raise ValueError(f"{name}_y for {metric!r} must be in {{1, 0, -1}}")
        splits[name] = (x, y)
    if len({x.shape[1] for x, _ in splits.values()}) != 1:
        raise ValueError(f"feature dims differ: { {k: x.shape[1] for k, (x, _) in splits.items()} }")
    if multi_label and len({y.shape[1] for _, y in splits.values()}) != 1:
        raise ValueError(f"label columns differ: { {k: y.shape[1] for k, (_, y) in splits.items()} }")
    (tx, ty), (vx, vy), (sx, sy) = splits["train"], splits["val"], splits["test"]
    trainval_x, trainval_y = np.concatenate([tx, vx]), np.concatenate([ty, vy])
    if standardize:
        tx, vx = _standardize(tx, tx, vx)
        trainval_x, sx = _standardize(trainval_x, trainval_x, sx)
    return (tx, ty, vx, vy, trainval_x, trainval_y, sx, sy), c_grid, multi_label


def _standardize(fit_on, *arrays):
    mean, std = fit_on.mean(axis=0), fit_on.std(axis=0)
    std[std == 0] = 1.0
    return [(a - mean) / std for a in arrays]


def _pick_best(c_grid, val_scores) -> int:
    """Index of the best validation score; ties go to the largest C (Ericsson et al.)."""
    val_scores = np.asarray(val_scores)
    tied = np.flatnonzero(val_scores == val_scores.max())
    return int(tied[np.argmax(c_grid[tied])])


# ----------------------------------------------------------------------------- fitting


def _estimator(c, tol, max_iter, init=None) -> LogisticRegression:
    """LogisticRegression(lbfgs, L2) at C; warm-started from ``init = (coef, intercept)``."""
    est = LogisticRegression(C=c, solver="lbfgs", tol=tol, max_iter=max_iter, warm_start=init is not None)
    if init is not None:
        est.coef_, est.intercept_ = init[0].copy(), init[1].copy()
    return est


def _fit_path(x, y, eval_x, cs, tol, max_iter, warm_start, init=None, decision=False):
    """Fit one estimator per C in ``cs`` on (x, y), in order.

    With ``warm_start`` the first fit starts from ``init`` (default: :func:`_prior_init`)
    and each later one from :func:`_extrapolate` of the previous solutions; without it
    every fit starts from zero (sklearn's cold start). ``tol=None`` means 1e-4 / len(x).

    x: (N, D); y: (N,) labels (multinomial when > 2 classes, binary for 2); eval_x: (M, D).
    Returns per C: ((coef, intercept), eval output, n_iter), where the eval output is
    ``decision_function(eval_x)`` if ``decision`` else ``predict(eval_x)``, both (M,)
    (decision only for binary y).
    """
    classes, counts = np.unique(y, return_counts=True)
    if len(classes) < 2:
        raise ValueError(f"need at least two classes in the training rows, got {classes.tolist()}")
    tol = 1e-4 / len(x) if tol is None else tol
    if warm_start and init is None:
        init = _prior_init(counts, x.shape[1])
    fits, path = [], []  # path: (C, (coef, intercept)) of the last three fits
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for c in cs:
            if warm_start and path:
                init = _extrapolate(path, c)
            est = _estimator(c, tol, max_iter, init if warm_start else None)
            est.fit(x, y)
            out = est.decision_function(eval_x) if decision else est.predict(eval_x)
            fits.append(((est.coef_, est.intercept_), out, int(est.n_iter_.max())))
            path = path[-2:] + [(c, (est.coef_, est.intercept_))]
    return fits


def _prior_init(counts, dim):
    """(coef, intercept) = (0, log class priors): the optimum as C -> 0, a better start than
    all-zeros when the path begins at strong regularisation (intercepts are unpenalised and
    badly conditioned: 73 -> 21 lbfgs iterations at C = 1e-5 in the benchmark)."""
    log_prior = np.log(counts / counts.sum())
    if len(counts) == 2:  # sklearn's binary model: one row, the logit of the second class
        return np.zeros((1, dim)), np.array([log_prior[1] - log_prior[0]])
    return np.zeros((len(counts), dim)), log_prior - log_prior.mean()


def _extrapolate(path, c):
    """Initial (coef, intercept) at C = c from the last fits on the path ``[(C, (coef, intercept))]``.

    The solution path continued through its last three points by a quadratic in log C
    (two points: a line; one: itself), which in the benchmark cuts the lbfgs iterations
    of the warm-started fits by ~15% over a line and ~30% over reusing the last
    solution. Only when the next step is at most as long as the last one (in log C), so
    an irregular grid cannot throw the start far away. It only moves the starting
    point: the fit still minimises the objective at c.
    """
    logs = [np.log(pc) for pc, _ in path]
    t = np.log(c)
    if len(path) < 2 or len(set(logs)) < len(logs) or abs(t - logs[-1]) > abs(logs[-1] - logs[-2]) * (1 + 1e-9):
        return path[-1][1]
    # Lagrange weights of the nodes logs[i] at t: sum_i weight_i * w_i interpolates the path.
    weights = [np.prod([(t - lj) / (li - lj) for j, lj in enumerate(logs) if j != i]) for i, li in enumerate(logs)]
    return tuple(sum(wt * sol[k] for wt, (_, sol) in zip(weights, path)) for k in range(2))


def _label_rows(y, column):
    """Rows of a multi-label split usable for class ``column`` (target != -1) and their bool labels."""
    keep = y[:, column] != -1
    return keep, y[keep, column] == 1


def _fit_class_path(x, y, eval_x, column, cs, tol, max_iter, warm_start, init=None):
    keep, labels = _label_rows(y, column)
    try:
        return _fit_path(x[keep], labels, eval_x, cs, tol, max_iter, warm_start, init, decision=True)
    except ValueError as err:
        raise ValueError(f"class {column}: {err}") from None


def _collect(fit_lists, order):
    """Flatten per-chunk fit lists back to grid order (``order`` maps path position -> grid index)."""
    flat = [f for fits in fit_lists for f in fits]
    out = [None] * len(flat)
    for pos, idx in enumerate(order):
        out[idx] = flat[pos]
    return out


# ----------------------------------------------------------------------------- sweeps


def linear_transfer(
    train_x,
    train_y,
    val_x,
    val_y,
    test_x,
    test_y,
    metric: str,
    c_grid=None,
    *,
    n_jobs: int = -1,
    warm_start: bool = True,
    max_iter: int = DEFAULT_MAX_ITER,
    tol: float | None = None,
    standardize: bool = False,
    path_chunks: int = DEFAULT_PATH_CHUNKS,
) -> SweepResult:
    """Choose C on val, refit on train + val, score on test (the protocol of the module docstring).

    Args:
        train_x, val_x, test_x: (N, D) frozen features of each split.
        train_y, val_y, test_y: (N,) class indices; for ``metric="map11"`` (N, C) targets
            in {1, 0, -1}, -1 (difficult) dropped from the training rows and ignored by AP.
        metric: "top1", "mean_per_class" or "map11".
        c_grid: inverse regularisation strengths; default :func:`default_c_grid`.
        n_jobs: joblib worker processes (-1 = all cores); the work is split the same
            way for any n_jobs, so the result does not depend on it.
        warm_start: walk the C path from small to large C, each fit starting from the
            previous solutions (see :func:`_fit_path`); False: every fit starts cold.
        max_iter: lbfgs iteration limit of every fit.
        tol: lbfgs ``tol`` (gtol on the gradient of sklearn's mean loss); None: 1e-4 / n
            for a fit on n rows (see the module docstring).
        standardize: z-score features with train (sweep) / train+val (refit) statistics.
        path_chunks: single-label only: the C path is cut into this many contiguous
            pieces, fitted in parallel, each starting from :func:`_prior_init`. More
            pieces balance the workers better but pay more cold starts.

    Returns:
        :class:`SweepResult`; ``val_curve`` follows the order of ``c_grid``.
    """
    if path_chunks < 1:
        raise ValueError(f"path_chunks must be >= 1, got {path_chunks}")
    data, c_grid, multi_label = _prepare(train_x, train_y, val_x, val_y, test_x, test_y, metric, c_grid, standardize)
    tx, ty, vx, vy, tvx, tvy, sx, sy = data
    order = np.argsort(c_grid, kind="stable")  # path: strong -> weak regularisation
    tasks = ty.shape[1] if multi_label else min(path_chunks, len(c_grid))
    # Workers are processes (loky): each gets cores // workers BLAS threads.
    parallel = Parallel(n_jobs=min(effective_n_jobs(n_jobs), tasks))
    run = dict(tol=tol, max_iter=max_iter, warm_start=warm_start)

    start = time.perf_counter()
    if multi_label:  # tasks = classes, each walking the whole path
        per_class = parallel(delayed(_fit_class_path)(tx, ty, vx, col, c_grid[order], **run) for col in range(tasks))
        fits = [_collect([class_fits], order) for class_fits in per_class]  # [class][grid index]
        val_scores = [score(metric, np.stack([f[i][1] for f in fits], axis=1), vy) for i in range(len(c_grid))]
        iters = [fit[2] for class_fits in fits for fit in class_fits]
    else:  # tasks = contiguous pieces of the path
        pieces = np.array_split(order, tasks)
        fits = _collect(parallel(delayed(_fit_path)(tx, ty, vx, c_grid[p], **run) for p in pieces), order)
        val_scores = [score(metric, fit[1], vy) for fit in fits]
        iters = [fit[2] for fit in fits]
    sweep_seconds = time.perf_counter() - start

    best = _pick_best(c_grid, val_scores)
    best_c = float(c_grid[best])
    start = time.perf_counter()
    if multi_label:  # each class warm-started from its validation fit at best_c
        refits = parallel(
            delayed(_fit_class_path)(tvx, tvy, sx, col, [best_c], **run, init=fits[col][best][0])
            for col in range(tasks)
        )
        test_score = score(metric, np.stack([r[0][1] for r in refits], axis=1), sy)
        refit_iters = [r[0][2] for r in refits]
    else:
        same_classes = np.array_equal(np.unique(ty), np.unique(tvy))
        init = fits[best][0] if same_classes else None  # used only with warm_start
        ((_, test_pred, n_iter),) = _fit_path(tvx, tvy, sx, [best_c], **run, init=init)
        test_score, refit_iters = score(metric, test_pred, sy), [n_iter]
    return SweepResult(
        best_c=best_c,
        val_curve=[(float(c), float(s)) for c, s in zip(c_grid, val_scores)],
        test_score=float(test_score),
        metric=metric,
        seconds={"sweep": sweep_seconds, "refit": time.perf_counter() - start},
        iterations=_iteration_counts(iters, refit_iters, max_iter),
    )


def plain_sklearn_sweep(
    train_x,
    train_y,
    val_x,
    val_y,
    test_x,
    test_y,
    metric: str,
    c_grid=None,
    *,
    max_iter: int = DEFAULT_MAX_ITER,
    tol: float | None = None,
    standardize: bool = False,
) -> SweepResult:
    """The naive reference: a fresh, cold-started LogisticRegression per C (and per class), one process.

    Same inputs, objective, grid and selection rule as :func:`linear_transfer`.
    """
    data, c_grid, multi_label = _prepare(train_x, train_y, val_x, val_y, test_x, test_y, metric, c_grid, standardize)
    tx, ty, vx, vy, tvx, tvy, sx, sy = data
    run = dict(tol=tol, max_iter=max_iter, warm_start=False)
    num_labels = ty.shape[1] if multi_label else 0

    def fit_and_score(x, y, eval_x, eval_y, c):
        if multi_label:
            fits = [_fit_class_path(x, y, eval_x, col, [c], **run)[0] for col in range(num_labels)]
            return score(metric, np.stack([f[1] for f in fits], axis=1), eval_y), [f[2] for f in fits]
        (fit,) = _fit_path(x, y, eval_x, [c], **run)
        return score(metric, fit[1], eval_y), [fit[2]]

    start = time.perf_counter()
    val_scores, iters = [], []
    for c in c_grid:
        val_score, n_iter = fit_and_score(tx, ty, vx, vy, float(c))
        val_scores.append(val_score)
        iters += n_iter
    sweep_seconds = time.perf_counter() - start
    best_c = float(c_grid[_pick_best(c_grid, val_scores)])
    start = time.perf_counter()
    test_score, refit_iters = fit_and_score(tvx, tvy, sx, sy, best_c)
    return SweepResult(
        best_c=best_c,
        val_curve=[(float(c), float(s)) for c, s in zip(c_grid, val_scores)],
        test_score=float(test_score),
        metric=metric,
        seconds={"sweep": sweep_seconds, "refit": time.perf_counter() - start},
        iterations=_iteration_counts(iters, refit_iters, max_iter),
    )


def _iteration_counts(sweep_iters, refit_iters, max_iter) -> dict[str, int]:
    return {
        "sweep": int(sum(sweep_iters)),
        "refit": int(sum(refit_iters)),
        "fits_at_max_iter": int(sum(n >= max_iter for n in list(sweep_iters) + list(refit_iters))),
    }

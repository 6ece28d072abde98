"""Linear transfer on frozen features: logistic regression with C chosen on a validation split.

Protocol of Ericsson et al. ("How Well Do Self-Supervised Models Transfer?", CVPR 2021),
after Kornblith et al. (CVPR 2019), checked against the authors' ``linear.py``
(github.com/linusericsson/ssl-transfer, commit 4e9b9c2):

- scikit-learn ``LogisticRegression``, L-BFGS, L2 penalty on the weights (not the
  intercept); multinomial for single-label data, one binary classifier per class for
  VOC 2007. Difficult (-1) targets are negatives under ``map11``, as their VOC loader
  makes them (``target == 1``); ``map11_ignore_difficult`` leaves them out of that
  class's fit and of its AP (the VOC devkit's convention).
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
``max_iter`` is 5000 (theirs: 100 per fit, but each fit warm-started from the last): with
1000, the fits at C = 0.03-3 on random-init ResNet-18 digits features stop at the limit (they
need up to ~3,600 iterations), and would leave only strongly regularised fits to choose from.
Even so, at very large C on separable features the fit stops where the mean-loss
gradient falls below tol, not at the (far away) optimum, so those fits depend on where
they started; the validation curve is only well defined where C is moderate, and only
there is C chosen (below).

Reproducibility. Where a fit stops depends on floating-point summation order, which
changes with the number of BLAS/OpenMP threads. On random-init ResNet-18 digits features
(23 C values) the fits at C = 0.03-3 stopped at max_iter = 1,000, those at C >= 1e4 after
0 iterations at their warm start, and one process with 2 BLAS threads chose C = 1000 where
1 thread (or 2 workers of 1 thread) chose C = 1e6. Hence:

1. Every fit runs with ``threads_per_fit`` BLAS/OpenMP threads (threadpoolctl), in a
   worker or in this process: the result does not depend on ``n_jobs`` or on the caller's
   thread settings.
2. C is chosen only among the *determined* fits: lbfgs converged (no iteration limit, no
   failed line search) and the stopping rule pins the weights to 1% (:func:`_determined`;
   at large C on separable features it does not: the weights are wherever the fit started).
   For ``map11`` every class's fit must be. The other C values keep their place in
   ``val_curve``; ``SweepResult.converged``/``determined`` mark them and
   ``SweepResult.selection`` says how many were left out and why. Without a determined
   fit the converged ones are the candidates, then all (with a warning).

Speed. :func:`plain_sklearn_sweep` is the naive reference: a fresh estimator per C,
cold start, one process. :func:`linear_transfer` minimises the same objectives with the
same estimator and stopping rule but (1) walks the C path from strong to weak
regularisation, each fit starting from the previous solutions (continued by a quadratic
in log C), the first from the C -> 0 optimum; (2) fits ``path_chunks`` contiguous pieces of
the path (or, for ``map11``, the classes) in parallel joblib worker processes; (3)
warm-starts the refit from the validation fit at the chosen C.
"""

import logging
import time
import warnings
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
from joblib import Parallel, delayed, effective_n_jobs
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from threadpoolctl import threadpool_limits

from ..metrics import MULTI_LABEL_METRICS, check_metric, difficult_rule, score

log = logging.getLogger(__name__)

DEFAULT_MAX_ITER = 5000
DEFAULT_PATH_CHUNKS = 4
DEFAULT_THREADS_PER_FIT = 1
# A converged fit is a candidate for best_c when the stopping rule pins its weights to this
# fraction of their norm (see _determined).
DETERMINED_RTOL = 0.01


@dataclass
class SweepResult:
    best_c: float
    val_curve: list[tuple[float, float]]  # (C, validation score) for every C, in grid order
    test_score: float  # percent, after the refit on train + val at best_c
    metric: str
    seconds: dict[str, float]  # {"sweep": ..., "refit": ...}
    iterations: dict[str, int] = field(default_factory=dict)  # lbfgs iterations, and fits at max_iter
    converged: list[bool] = field(default_factory=list)  # per C (grid order): lbfgs reported success
    determined: list[bool] = field(default_factory=list)  # per C: converged and pinned down (the candidates)
    refit_converged: bool = True  # the refit on train + val at best_c converged
    selection: str = ""  # which C values best_c was chosen among, and why the others were not, in words


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


def _pick_best(c_grid, val_scores, eligible=None) -> int:
    """Index of the best validation score among ``eligible`` (bool per C; default: all);
    ties go to the largest C (Ericsson et al.)."""
    val_scores = np.asarray(val_scores, dtype=np.float64)
    if eligible is not None:
        val_scores = np.where(eligible, val_scores, -np.inf)
    tied = np.flatnonzero(val_scores == val_scores.max())
    return int(tied[np.argmax(c_grid[tied])])


def _candidates(converged: list[bool], determined: list[bool], max_iter: int) -> tuple[list[bool], str]:
    """The C values best_c is chosen among (the determined fits; if none, the converged ones;
    if none, all) and a sentence that says so."""
    total = len(converged)
    stopped, loose = total - sum(converged), sum(converged) - sum(determined)
    left_out = [f"{stopped} stopped at max_iter={max_iter} or in a failed line search (raise max_iter)"] * (stopped > 0)
    left_out += [f"{loose} at C so large that the stopping rule leaves the weights undetermined"] * (loose > 0)
    reason = f"; left out: {', '.join(left_out)}" if left_out else ""
    if any(determined):
        return list(determined), (
            f"the {sum(determined)} of {total} C values whose fits converged to determined weights{reason}"
        )
    log.warning(
        "linear sweep: no fit of the %d C values converged to determined weights%s; C is chosen among %s and "
        "depends on floating-point order",
        total,
        reason,
        "the converged ones" if any(converged) else "all",
    )
    if any(converged):
        return list(converged), (
            f"the {sum(converged)} of {total} C values whose fits converged (none determined){reason}"
        )
    return [True] * total, f"all {total} C values (none converged){reason}"


# ----------------------------------------------------------------------------- fitting


def _estimator(c, tol, max_iter, init=None) -> LogisticRegression:
    """LogisticRegression(lbfgs, L2) at C; warm-started from ``init = (coef, intercept)``."""
    est = LogisticRegression(C=c, solver="lbfgs", tol=tol, max_iter=max_iter, warm_start=init is not None)
    if init is not None:
        est.coef_, est.intercept_ = init[0].copy(), init[1].copy()
    return est


class Fit(NamedTuple):
    """One lbfgs fit at one C."""

    solution: tuple[np.ndarray, np.ndarray]  # (coef, intercept)
    output: np.ndarray  # (M,) predict(eval_x), or decision_function(eval_x) for a binary fit
    n_iter: int
    converged: bool  # lbfgs reported success: no iteration limit, no failed line search
    determined: bool  # converged, and the stopping rule pins the weights down (see _determined)


def _fit_converged(est: LogisticRegression, x, y) -> bool:
    """``est.fit(x, y)``; False when lbfgs reports a failure (iteration limit, failed line
    search), which sklearn signals by a ``ConvergenceWarning``, silenced here as Ericsson et
    al. do. Other warnings are passed on."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        est.fit(x, y)
    failed = [w for w in caught if issubclass(w.category, ConvergenceWarning)]
    for w in caught:
        if w not in failed:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return not failed


def _determined(coef: np.ndarray, c: float, n: int, tol: float) -> bool:
    """Whether a fit that stopped at gradient max-norm <= ``tol`` has its weights pinned down.

    sklearn's objective, mean loss + ||W||^2 / (2 C n), is 1/(C n)-strongly convex in W,
    so such a stop leaves W within about sqrt(W.size) * tol * C * n of the optimum. That
    bound must be at most DETERMINED_RTOL * ||W||. It grows with C: at large C on separable
    features it exceeds ||W|| itself, the fit stops wherever it started (after 0 iterations
    on a warm-started path) and its validation score depends on the start, not on C."""
    return bool(np.sqrt(coef.size) * tol * c * n <= DETERMINED_RTOL * np.linalg.norm(coef))


def _fit_path(x, y, eval_x, cs, tol, max_iter, warm_start, threads, init=None, decision=False) -> list[Fit]:
    """Fit one estimator per C in ``cs`` on (x, y), in order, with ``threads`` BLAS/OpenMP threads.

    With ``warm_start`` the first fit starts from ``init`` (default: :func:`_prior_init`)
    and each later one from :func:`_extrapolate` of the previous solutions; without it
    every fit starts from zero (sklearn's cold start). ``tol=None`` means 1e-4 / len(x).

    x: (N, D); y: (N,) labels (multinomial when > 2 classes, binary for 2); eval_x: (M, D).
    The output of each :class:`Fit` is ``decision_function(eval_x)`` if ``decision`` else
    ``predict(eval_x)`` (decision only for binary y).
    """
    classes, counts = np.unique(y, return_counts=True)
    if len(classes) < 2:
        raise ValueError(f"need at least two classes in the training rows, got {classes.tolist()}")
    tol = 1e-4 / len(x) if tol is None else tol
    if warm_start and init is None:
        init = _prior_init(counts, x.shape[1])
    fits, path = [], []  # path: (C, (coef, intercept)) of the last three fits
    # The same thread count in a joblib worker and in this process: the summation order, and
    # so where a fit stops, then depends neither on n_jobs nor on the caller's settings.
    with threadpool_limits(limits=threads):
        for c in cs:
            if warm_start and path:
                init = _extrapolate(path, c)
            est = _estimator(c, tol, max_iter, init if warm_start else None)
            converged = _fit_converged(est, x, y)
            out = est.decision_function(eval_x) if decision else est.predict(eval_x)
            determined = converged and _determined(est.coef_, c, len(x), tol)
            fits.append(Fit((est.coef_, est.intercept_), out, int(est.n_iter_.max()), converged, determined))
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


def _label_rows(y, column, difficult):
    """Rows of a multi-label split that class ``column`` is fitted on, and their bool labels:
    every row (``difficult="negative"``) or those whose target is not -1 (``"ignore"``)."""
    keep = y[:, column] != -1 if difficult == "ignore" else np.ones(len(y), dtype=bool)
    return keep, y[keep, column] == 1


def _fit_class_path(x, y, eval_x, column, difficult, cs, tol, max_iter, warm_start, threads, init=None) -> list[Fit]:
    keep, labels = _label_rows(y, column, difficult)
    try:
        return _fit_path(x[keep], labels, eval_x, cs, tol, max_iter, warm_start, threads, init, decision=True)
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
    threads_per_fit: int = DEFAULT_THREADS_PER_FIT,
) -> SweepResult:
    """Choose C on val, refit on train + val, score on test (the protocol of the module docstring).

    Args:
        train_x, val_x, test_x: (N, D) frozen features of each split.
        train_y, val_y, test_y: (N,) class indices; for ``metric="map11"`` (N, C) targets
            in {1, 0, -1}; -1 (difficult) as the metric says
            (:func:`~seed_transfer.classification.metrics.difficult_rule`).
        metric: "top1", "mean_per_class", "map11" or "map11_ignore_difficult".
        c_grid: inverse regularisation strengths; default :func:`default_c_grid`.
        n_jobs: joblib worker processes (-1 = all cores); the work is split the same way
            and every fit runs with ``threads_per_fit`` threads for any n_jobs, so the
            result does not depend on it.
        warm_start: walk the C path from small to large C, each fit starting from the
            previous solutions (see :func:`_fit_path`); False: every fit starts cold.
        max_iter: lbfgs iteration limit of every fit; C is chosen among the C values whose
            fits converged within it (see the module docstring).
        tol: lbfgs ``tol`` (gtol on the gradient of sklearn's mean loss); None: 1e-4 / n
            for a fit on n rows (see the module docstring).
        standardize: z-score features with train (sweep) / train+val (refit) statistics.
        path_chunks: single-label only: the C path is cut into this many contiguous
            pieces, fitted in parallel, each starting from :func:`_prior_init`. More
            pieces balance the workers better but pay more cold starts.
        threads_per_fit: BLAS/OpenMP threads of every fit. The result is reproducible
            for a given value; another value changes the floating-point summation order.

    Returns:
        :class:`SweepResult`; ``val_curve`` and ``converged`` follow the order of ``c_grid``.
    """
    if path_chunks < 1:
        raise ValueError(f"path_chunks must be >= 1, got {path_chunks}")
    if threads_per_fit < 1:
        raise ValueError(f"threads_per_fit must be >= 1, got {threads_per_fit}")
    data, c_grid, multi_label = _prepare(train_x, train_y, val_x, val_y, test_x, test_y, metric, c_grid, standardize)
    tx, ty, vx, vy, tvx, tvy, sx, sy = data
    order = np.argsort(c_grid, kind="stable")  # path: strong -> weak regularisation
    tasks = ty.shape[1] if multi_label else min(path_chunks, len(c_grid))
    parallel = Parallel(n_jobs=min(effective_n_jobs(n_jobs), tasks))
    run = dict(tol=tol, max_iter=max_iter, warm_start=warm_start, threads=threads_per_fit)
    difficult = difficult_rule(metric) if multi_label else None

    start = time.perf_counter()
    if multi_label:  # tasks = classes, each walking the whole path
        per_class = parallel(
            delayed(_fit_class_path)(tx, ty, vx, col, difficult, c_grid[order], **run) for col in range(tasks)
        )
        by_c = list(zip(*[_collect([class_fits], order) for class_fits in per_class]))  # [grid index][class]
    else:  # tasks = contiguous pieces of the path
        pieces = np.array_split(order, tasks)
        per_piece = parallel(delayed(_fit_path)(tx, ty, vx, c_grid[p], **run) for p in pieces)
        by_c = [[fit] for fit in _collect(per_piece, order)]  # [grid index][the one fit]
    val_scores = [score(metric, _output(fits, multi_label), vy) for fits in by_c]
    sweep_seconds = time.perf_counter() - start

    best, selection = _choose(c_grid, val_scores, by_c, max_iter)
    best_c = float(c_grid[best])
    start = time.perf_counter()
    if multi_label:  # each class warm-started from its validation fit at best_c
        refits = [
            r[0]
            for r in parallel(
                delayed(_fit_class_path)(tvx, tvy, sx, col, difficult, [best_c], **run, init=by_c[best][col].solution)
                for col in range(tasks)
            )
        ]
    else:
        same_classes = np.array_equal(np.unique(ty), np.unique(tvy))
        init = by_c[best][0].solution if same_classes else None  # used only with warm_start
        refits = _fit_path(tvx, tvy, sx, [best_c], **run, init=init)
    test_score = score(metric, _output(refits, multi_label), sy)
    return _result(
        c_grid,
        val_scores,
        best_c,
        test_score,
        metric,
        by_c,
        refits,
        max_iter,
        selection,
        {"sweep": sweep_seconds, "refit": time.perf_counter() - start},
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
    threads_per_fit: int = DEFAULT_THREADS_PER_FIT,
) -> SweepResult:
    """The naive reference: a fresh, cold-started LogisticRegression per C (and per class), one process.

    Same inputs, objective, grid, thread pinning and selection rule as :func:`linear_transfer`.
    """
    data, c_grid, multi_label = _prepare(train_x, train_y, val_x, val_y, test_x, test_y, metric, c_grid, standardize)
    tx, ty, vx, vy, tvx, tvy, sx, sy = data
    run = dict(tol=tol, max_iter=max_iter, warm_start=False, threads=threads_per_fit)
    num_labels = ty.shape[1] if multi_label else 0
    difficult = difficult_rule(metric) if multi_label else None

    def fits_at(x, y, eval_x, c) -> list[Fit]:
        if multi_label:
            return [_fit_class_path(x, y, eval_x, col, difficult, [c], **run)[0] for col in range(num_labels)]
        return _fit_path(x, y, eval_x, [c], **run)

    start = time.perf_counter()
    by_c = [fits_at(tx, ty, vx, float(c)) for c in c_grid]
    val_scores = [score(metric, _output(fits, multi_label), vy) for fits in by_c]
    sweep_seconds = time.perf_counter() - start
    best, selection = _choose(c_grid, val_scores, by_c, max_iter)
    best_c = float(c_grid[best])
    start = time.perf_counter()
    refits = fits_at(tvx, tvy, sx, best_c)
    test_score = score(metric, _output(refits, multi_label), sy)
    return _result(
        c_grid,
        val_scores,
        best_c,
        test_score,
        metric,
        by_c,
        refits,
        max_iter,
        selection,
        {"sweep": sweep_seconds, "refit": time.perf_counter() - start},
    )


def _output(fits: list[Fit], multi_label: bool) -> np.ndarray:
    """What the metric scores: (M, C) decision values of the per-class fits, or (M,) predictions."""
    return np.stack([f.output for f in fits], axis=1) if multi_label else fits[0].output


def _per_c(by_c: list[list[Fit]], flag: str) -> list[bool]:
    """``flag`` ("converged", "determined") of each C: true when all its fits (one per class for ``map11``) are."""
    return [all(getattr(f, flag) for f in fits) for fits in by_c]


def _choose(c_grid, val_scores, by_c: list[list[Fit]], max_iter: int) -> tuple[int, str]:
    """Index of best_c (:func:`_pick_best` among :func:`_candidates`) and the sentence that says how."""
    eligible, selection = _candidates(_per_c(by_c, "converged"), _per_c(by_c, "determined"), max_iter)
    return _pick_best(c_grid, val_scores, eligible), selection


def _result(c_grid, val_scores, best_c, test_score, metric, by_c, refits, max_iter, selection, seconds) -> SweepResult:
    refit_converged = all(f.converged for f in refits)
    log.info(
        "linear sweep: C = %.4g chosen among %s; test %s %.2f%s",
        best_c,
        selection,
        metric,
        test_score,
        "" if refit_converged else f" (the refit did not converge within max_iter={max_iter})",
    )
    return SweepResult(
        best_c=best_c,
        val_curve=[(float(c), float(s)) for c, s in zip(c_grid, val_scores)],
        test_score=float(test_score),
        metric=metric,
        seconds=seconds,
        iterations=_iteration_counts([f.n_iter for fits in by_c for f in fits], [f.n_iter for f in refits], max_iter),
        converged=_per_c(by_c, "converged"),
        determined=_per_c(by_c, "determined"),
        refit_converged=refit_converged,
        selection=selection,
    )


def _iteration_counts(sweep_iters, refit_iters, max_iter) -> dict[str, int]:
    return {
        "sweep": int(sum(sweep_iters)),
        "refit": int(sum(refit_iters)),
        "fits_at_max_iter": int(sum(n >= max_iter for n in list(sweep_iters) + list(refit_iters))),
    }

"""Speed of the linear-transfer C sweep: naive sklearn loop vs ``linear_transfer``.

On synthetic class-clustered Gaussian features the size of CIFAR-100 features of a
ResNet-18 (50,000 train x 512, 100 classes, 10,000 val, 10,000 test), times in one run
(a) ``plain_sklearn_sweep``: a fresh LogisticRegression per C, cold start, one process,
and (b) ``linear_transfer``: warm starts along the C path + joblib workers; then prints
both times, the speed-up and both chosen C and test accuracies (target: >= 5x at equal
C, test accuracy within 0.1 point). The plain sweep takes long on few cores; run small:

    python benchmarks/bench_linear_sweep.py                              # full size
    python benchmarks/bench_linear_sweep.py --n-train 10000 --grid 15    # 2-core machine
"""

import argparse
import os
import time

import numpy as np
from threadpoolctl import threadpool_limits

from seed_transfer.classification.linear import default_c_grid, linear_transfer, plain_sklearn_sweep
from seed_transfer.classification.linear.logistic import DEFAULT_MAX_ITER


def make_features(n_train, n_val, n_test, dim, classes, separation, seed=0):
    """Class means ~ N(0, separation^2 / dim) per coordinate, plus unit Gaussian noise with
    dim // 8 nuisance directions of std 3 (in a random basis), as float32 like real
    features. Returns (x, y) for train, val and test."""
    rng = np.random.default_rng(seed)
    means = rng.normal(0.0, separation / np.sqrt(dim), size=(classes, dim))  # classes x dim
    noise_std = np.ones(dim)
    noise_std[: dim // 8] = 3.0
    basis = np.linalg.qr(rng.normal(size=(dim, dim)))[0]  # dim x dim orthonormal

    def draw(n):
        y = rng.integers(0, classes, n)
        x = means[y] + (rng.normal(size=(n, dim)) * noise_std) @ basis
        return x.astype(np.float32), y

    return draw(n_train), draw(n_val), draw(n_test)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n-train", type=int, default=50000)
    parser.add_argument("--n-val", type=int, default=10000)
    parser.add_argument("--n-test", type=int, default=10000)
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--classes", type=int, default=100)
    parser.add_argument("--grid", type=int, default=45, help="number of C values, C = 1 / logspace(-6, 5, grid)")
    parser.add_argument("--separation", type=float, default=4.0, help="scale of the class means (difficulty)")
    parser.add_argument("--n-jobs", type=int, default=-1)
    parser.add_argument("--tol", type=float, default=None, help="lbfgs tol of both sweeps (default: 1e-4 / rows)")
    parser.add_argument("--max-iter", type=int, default=DEFAULT_MAX_ITER)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--blas-threads",
        type=int,
        default=None,
        help="cap BLAS threads of this process (both sweeps) to compare at equal threading",
    )
    args = parser.parse_args()

    splits = make_features(args.n_train, args.n_val, args.n_test, args.dim, args.classes, args.separation, args.seed)
    data = [a for split in splits for a in split]
    grid = default_c_grid(args.grid)
    print(
        f"train {args.n_train} x {args.dim}, {args.classes} classes, val {args.n_val}, test {args.n_test}, "
        f"{args.grid} C values, tol {args.tol or '1e-4/rows'}, max_iter {args.max_iter}, n_jobs {args.n_jobs}, "
        f"BLAS threads {args.blas_threads or 'default'}; {os.cpu_count()} CPUs, "
        f"load average {os.getloadavg()[0]:.2f} at start"
    )

    with threadpool_limits(args.blas_threads):
        tic = time.perf_counter()
        plain = plain_sklearn_sweep(*data, "top1", grid, tol=args.tol, max_iter=args.max_iter)
        plain_total = time.perf_counter() - tic
        tic = time.perf_counter()
        fast = linear_transfer(*data, "top1", grid, n_jobs=args.n_jobs, tol=args.tol, max_iter=args.max_iter)
        fast_total = time.perf_counter() - tic

    for name, res, total in (("plain sklearn sweep", plain, plain_total), ("linear_transfer", fast, fast_total)):
        print(
            f"{name:20s} total {total:7.1f} s "
            f"(sweep {res.seconds['sweep']:.1f} s, refit {res.seconds['refit']:.1f} s)"
            f"  lbfgs iterations {res.iterations['sweep']} + {res.iterations['refit']}"
            f"  fits at max_iter {res.iterations['fits_at_max_iter']}"
            f"  best C {res.best_c:.4g}  val {max(s for _, s in res.val_curve):.2f}  test top-1 {res.test_score:.2f}"
        )
    print(
        f"speed-up {plain_total / fast_total:.2f}x; same C: {plain.best_c == fast.best_c}; "
        f"test difference {fast.test_score - plain.test_score:+.2f} points; "
        f"load average {os.getloadavg()[0]:.2f} at end"
    )
    print("C, val top-1 plain, val top-1 fast:")
    for (c, a), (_, b) in zip(plain.val_curve, fast.val_curve):
        print(f"  {c:10.4g}  {a:6.2f}  {b:6.2f}")


if __name__ == "__main__":
    main()

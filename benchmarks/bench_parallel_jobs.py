"""Parallel single-threaded jobs against one job on every core: the same short Detectron2
fine-tunes (the `small` preset's detection schedule, cut to ``--iters`` iterations, random
init, the offline tree tiles), run (a) one after another, torch on all the cores, and (b) all
at once, torch on cores / jobs threads each. Prints both wall times and the throughput ratio,
measured side by side in this run. It is what ``launcher.executor=local launcher.cpus_per_task=1
launcher.max_jobs=N`` buys a comparison on a workstation.

    python benchmarks/bench_parallel_jobs.py                    # 2 fine-tunes of 40 iterations
    python benchmarks/bench_parallel_jobs.py --jobs 4 --iters 100

Each fine-tune is a real ``tools/transfer_det.py`` process (start-up, training, evaluation), so
the ratio includes everything a DAG job pays. Run it on an idle machine: another heavy process
changes both numbers.
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from seed_core.config import load_config
from seed_transfer.pipelines.compare import CompareConfig

REPO = Path(__file__).resolve().parents[1]


def command(cfg: CompareConfig, out: Path, iters: int) -> list[str]:
    schedule = ["SOLVER.MAX_ITER", str(iters), "SOLVER.STEPS", f"({iters * 3 // 4},)"]
    schedule += ["SOLVER.WARMUP_ITERS", str(max(iters // 10, 1)), "SOLVER.CHECKPOINT_PERIOD", "100000"]
    return [
        sys.executable,
        str(REPO / "tools" / "transfer_det.py"),
        "--config",
        str(REPO / cfg.det.config),
        "--weights",
        "random",
        "--output-dir",
        str(out),
        "--data-root",
        str(REPO / cfg.det.data_root),
        "--engine",
        "detectron2",
        *cfg.det.all_opts(),
        *schedule,
    ]


def _finish(proc: subprocess.Popen) -> None:
    _, err = proc.communicate()  # drains stderr while waiting: a full pipe would block the child
    if proc.returncode:
        raise SystemExit(f"a fine-tune failed:\n{err.decode()[-2000:]}")


def run_all(cmds: list[list[str]], threads: int, together: bool) -> float:
    """Run ``cmds`` on ``threads`` torch threads each, all at once or one after another; seconds."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    tic = time.perf_counter()
    procs = []
    for c in cmds:
        procs.append(subprocess.Popen(c, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE))
        if not together:
            _finish(procs[-1])
    if together:
        for proc in procs:
            _finish(proc)
    return time.perf_counter() - tic


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=2, help="fine-tunes (and parallel processes in (b))")
    parser.add_argument("--iters", type=int, default=40)
    parser.add_argument(
        "--preset", default="configs/compare/small.yaml", help="the comparison whose det schedule to use"
    )
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    cfg = load_config(CompareConfig, REPO / args.preset)
    with tempfile.TemporaryDirectory() as tmp:
        warm = command(cfg, Path(tmp) / "warm", 2)  # builds the tree tiles once, outside the timing
        run_all([warm], cores, together=False)
        seq = run_all([command(cfg, Path(tmp) / f"a{i}", args.iters) for i in range(args.jobs)], cores, False)
        par_threads = max(cores // args.jobs, 1)
        par = run_all([command(cfg, Path(tmp) / f"b{i}", args.iters) for i in range(args.jobs)], par_threads, True)
    print(f"{args.jobs} fine-tunes of {args.iters} iterations ({args.preset}'s det schedule), {cores} cores")
    print(f"(a) one after another, torch on {cores} threads: {seq:.1f} s")
    print(f"(b) all at once, torch on {par_threads} thread(s) each: {par:.1f} s")
    print(f"throughput (b) / (a): {seq / par:.2f}x")


if __name__ == "__main__":
    main()

"""Which CPU settings keep a distillation step near its passes, alone and beside another busy process
(issue 31 item 2): torch threads x loader workers x OpenMP wait policy, each with and without a
competitor, side by side in one run.

Each point runs ``bench_step_breakdown.py`` in a fresh process (OpenMP reads its environment once, at
start) and reads back its JSON; the competitor is a pure-Python busy loop at ``nice 19`` on its own,
started before the point and stopped after it: the "anything else running" of a shared node.

    python benchmarks/bench_cpu_settings.py                        # the demo's config, the default grid
    python benchmarks/bench_cpu_settings.py --threads 1 2 --workers 0 1 --policies "" PASSIVE --steps 10

Run it with nothing else on the machine (pause long jobs with ``kill -STOP``). It prints one table:
step time, images/s, the step over its passes, and the slow-down the competitor causes.
"""

import argparse
import itertools
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
BUSY = "import itertools\nfor _ in itertools.count(): pass\n"


def run_point(args, threads: int, workers: int, policy: str, competitor: bool) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    env.pop("OMP_WAIT_POLICY", None)
    if policy:
        env["OMP_WAIT_POLICY"] = policy
    busy = subprocess.Popen(["nice", "-n", "19", sys.executable, "-c", BUSY]) if competitor else None
    try:
        with tempfile.NamedTemporaryFile(suffix=".json") as out:
            command = [
                sys.executable,
                str(HERE / "bench_step_breakdown.py"),
                "--config",
                args.config,
                "--steps",
                str(args.steps),
                "--warmup",
                str(args.warmup),
                "--json",
                out.name,
                f"data.num_workers={workers}",
                *args.overrides,
            ]
            subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL)
            return json.loads(Path(out.name).read_text())
    finally:
        if busy is not None:
            busy.kill()
            busy.wait()


def main(argv=None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default="configs/distill/demo.yaml")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--policies", nargs="+", default=["", "PASSIVE"], help='OMP_WAIT_POLICY values; "" = unset')
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("overrides", nargs="*", help="key=value config overrides")
    args = parser.parse_args(argv)

    points = []
    print(
        "| threads | workers | OMP_WAIT_POLICY | step s (alone) | images/s | step / passes | step s (beside a busy process) | slow-down |"
    )
    print("|---:|---:|---|---:|---:|---:|---:|---:|")
    for threads, workers, policy in itertools.product(args.threads, args.workers, args.policies):
        quiet = run_point(args, threads, workers, policy, competitor=False)
        shared = run_point(args, threads, workers, policy, competitor=True)
        points.append({"threads": threads, "workers": workers, "policy": policy, "quiet": quiet, "shared": shared})
        print(
            f"| {threads} | {workers} | {policy or '(unset)'} | {quiet['step_s']:.3f} | {quiet['images_per_s']:.1f} "
            f"| {quiet['step_over_passes']:.2f}x | {shared['step_s']:.3f} | {shared['step_s'] / quiet['step_s']:.2f}x |",
            flush=True,
        )
    return points


if __name__ == "__main__":
    main()

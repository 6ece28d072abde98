"""Run a SEED ablation: one base distillation config, a grid of settings (tau_T, queue size,
strategy, teacher, ...), distillation + evaluation per point, then a table, CSV and plot per
axis and <output_dir>/report.md (the paper's Tables 3-5 and Figure 5).

    python tools/ablate.py --config configs/ablation/demo.yaml                 # offline CPU demo
    python tools/ablate.py --config configs/ablation/paper_tau_queue.yaml only=[distill.tau_teacher]
    python tools/ablate.py --config configs/ablation/demo.yaml mode=product --dry-run   # list the points

Installed, the same command is `seed-ablate --config ...`. Every point has its own folder under
<output_dir>/points/ and is skipped when its student is exported and its evaluations are
written; an interrupted distillation resumes from its checkpoint. Run the same command again
to continue an interrupted ablation.
"""

import sys

from seed_core.config import load_config

from ..pipelines.ablation import AblationConfig, expand_grid, run_ablation
from .common import build_parser, launchable, print_chained, run_cli


def _run(args) -> int:
    cfg = load_config(AblationConfig, args.config, args.overrides)
    if args.dry_run:
        for point in expand_grid(cfg).points:
            print(f"{point.name}: {' '.join(point.overrides) or '(base config)'}")
        return 0
    return _summary(run_ablation(cfg))


def _summary(result: dict) -> int:
    skipped = sum(s["status"] == "skipped" for s in result["stages"])
    failed = [p["point"] for p in result["points"] if p["status"] != "done"]
    failures = f", failed: {', '.join(failed)}" if failed else ""
    print(
        f"{len(result['points'])} points, {len(result['stages'])} stages ({skipped} skipped{failures}) "
        f"-> {result['report']}"
    )
    return 1 if failed else 0


def _dag(launcher, argv) -> int:
    """``--launcher slurm``: every point a job of its own (:mod:`seed_transfer.pipelines.ablation.dag`),
    chained in SLURM with the report as the last job (this process returns), or waited on here
    (``launcher.wait=true``, and submitit's local executor), which then writes the report."""
    from ..pipelines.ablation.dag import run_ablation_dag

    args = _parser().parse_args(argv)
    result = run_ablation_dag(load_config(AblationConfig, args.config, args.overrides), launcher)
    return print_chained(result) if "chained" in result else _summary(result)


@launchable("ablate", AblationConfig, dag=_dag)
def main(argv=None) -> int:
    return run_cli(_run, _parser().parse_args(argv))


def _parser():
    parser = build_parser(
        __doc__,
        config="YAML file under configs/ablation/",
        overrides="key=value, e.g. mode=product only=[distill.queue_size] 'axes.distill.tau_teacher=[0.01, 0.1]'",
    )
    parser.add_argument("--dry-run", action="store_true", help="print the points and their overrides, run nothing")
    return parser


if __name__ == "__main__":
    sys.exit(main())

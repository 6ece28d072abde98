"""Compare SEED against plain self-supervised training (MoCo v2), random init and an
optional supervised/teacher checkpoint on classification (linear + kNN) and detection
transfer; writes <output_dir>/report.md, results.csv and plots.

    python tools/compare.py --config configs/compare/demo.yaml            # offline CPU demo
    python tools/compare.py --config configs/compare/demo.yaml det.seeds=3 output_dir=outputs/compare/demo3
    python tools/compare.py --config configs/compare/paper.yaml           # edit its paths first

Installed, the same command is `seed-transfer-compare --config ...`. Every stage writes under
output_dir and is skipped when its outputs exist: run the same command again to continue an
interrupted comparison.

Re-analyse a finished comparison under today's statistics (its results.csv and config.yaml are
enough; nothing runs again): the differences, results.csv's difference lines and differences.png
are rewritten, the rest of the report is kept:

    python tools/compare.py --rerender docs/results/compare_small4

On a cluster, `--launcher slurm` makes every stage a SLURM job (each distillation, then every
row x dataset and row x fine-tuning seed, in parallel; resources per stage: the config's
`jobs.<stage>` keys over `launcher.<key>=value`); this command waits for them and writes the
report. `launcher.executor=local` runs the same jobs as local processes:

    python tools/compare.py --config configs/compare/paper.yaml --launcher slurm \
        launcher.partition=learnlab "jobs.distill={gpus_per_node: 8}" "jobs.det={gpus_per_node: 1}"
"""

import shlex
import sys

from seed_core.config import load_config

from ..pipelines.compare import CompareConfig, run_compare
from ..pipelines.stages import config_path
from .common import build_parser, launchable, print_chained, run_cli


def _run(args, argv) -> int:
    result = run_compare(
        load_config(CompareConfig, config_path(args.config), args.overrides), command=_command_line(argv)
    )
    skipped = sum(s["status"] == "skipped" for s in result["stages"])
    print(f"{len(result['rows'])} rows, {len(result['stages'])} stages ({skipped} skipped) -> {result['report']}")
    return 0


def _parser():
    return build_parser(
        __doc__, config="e.g. configs/compare/demo.yaml", overrides="key=value, e.g. det.seeds=3 cls.enabled=false"
    )


def _dag(launcher, argv) -> int:
    """``--launcher slurm``: every stage a job of its own (:mod:`seed_transfer.pipelines.compare.dag`),
    chained in SLURM with the report as the last job (this process returns), or waited on here
    (``launcher.wait=true``, and submitit's local executor), which then writes the report."""
    from ..pipelines.compare.dag import run_compare_dag

    args = _parser().parse_args(argv)
    cfg = load_config(CompareConfig, config_path(args.config), args.overrides)
    result = run_compare_dag(cfg, launcher, command=_command_line(None))
    if "chained" in result:
        return print_chained(result)
    print(f"{len(result['rows'])} rows, {len(result['stages'])} stages -> {result['report']}")
    return 0


def _rerender(args, argv) -> int:
    from ..pipelines.compare.rerender import rerender

    print(f"differences re-rendered -> {rerender(args.rerender, _command_line(argv))}")
    return 0


@launchable("compare", CompareConfig, dag=_dag)
def main(argv=None) -> int:
    if "--rerender" in (sys.argv[1:] if argv is None else argv):
        parser = build_parser(__doc__)
        parser.add_argument("--rerender", required=True, metavar="FOLDER", help="a finished comparison's folder")
        return run_cli(_rerender, parser.parse_args(argv), argv)
    return run_cli(_run, _parser().parse_args(argv), argv)


def _command_line(argv) -> str:
    """The command as typed (``python tools/compare.py ...`` or ``seed-transfer-compare ...``)."""
    if argv is not None:
        return shlex.join(["seed-transfer-compare", *argv])
    program = ["python", sys.argv[0]] if sys.argv[0].endswith(".py") else ["seed-transfer-compare"]
    return shlex.join([*program, *sys.argv[1:]])


if __name__ == "__main__":
    sys.exit(main())

"""ImageNet linear evaluation of a checkpoint: SGD linear probe on the frozen backbone (MoCo's protocol).

    python tools/eval_linear.py --config configs/eval/linear_imagenet.yaml \
        model.weights=student.pth data.root=/path/imagenet          # holds train/<wnid>/ and val/<wnid>/
    torchrun --nproc_per_node=8 tools/eval_linear.py --config configs/eval/linear_imagenet.yaml ...
    python tools/eval_linear.py --config ... features.cached=true   # train on cached features (fast)
    python tools/eval_linear.py --config ... --resume                # continue an interrupted run
    python tools/eval_linear.py --config ... --overwrite             # start the run in the folder over

Installed, the same command is `seed-eval-linear --config ...`. Writes
<train.output_dir>/linear_eval.json (top-1/top-5), metrics.csv and checkpoint.pth. A folder that
holds a run is continued only with --resume, started over only with --overwrite; one process at a time.
"""

import sys

from seed_core import distributed as du
from seed_core.config import load_config

from ..imagenet.linear_probe import run_linear_probe
from ..imagenet.schema import LinearEvalConfig
from .common import OVERWRITE_HELP, build_parser, launchable, run_cli


def _run(args) -> int:
    cfg = load_config(LinearEvalConfig, args.config, args.overrides)
    result = run_linear_probe(cfg, resume=args.resume, overwrite=args.overwrite)
    if not du.is_main_process():
        return 0
    final, best = result["final"], result["best"]
    print(
        f"{result['model']} linear probe: top-1 {final['top1']:.2f}, top-5 {final['top5']:.2f} "
        f"(best top-1 {best['top1']:.2f} at epoch {best['epoch']:.0f}) -> {result['path']}"
    )
    return 0


@launchable("eval_linear", LinearEvalConfig)
def main(argv=None) -> int:
    parser = build_parser(
        __doc__,
        config="YAML file under configs/eval/",
        resume="continue from <train.output_dir>/checkpoint.pth",
        overrides="key=value, e.g. data.root=/path/imagenet optim.base_lr=30",
    )
    parser.add_argument("--overwrite", action="store_true", help=OVERWRITE_HELP)
    return run_cli(_run, parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())

"""Semi-supervised ImageNet evaluation: fine-tune the whole network on the 1% or 10% label subset
(SimCLR's protocol and subset lists), then top-1/top-5 on the validation set.

    python tools/eval_semisup.py --config configs/eval/semisup_1pct.yaml \
        model.weights=student.pth data.root=/path/imagenet data.subset_file=/path/1percent.txt
    torchrun --nproc_per_node=8 tools/eval_semisup.py --config configs/eval/semisup_10pct.yaml ...
    python tools/eval_semisup.py --config ... --resume               # continue an interrupted run
    python tools/eval_semisup.py --config ... --overwrite            # start the run in the folder over

Installed, the same command is `seed-eval-semisup --config ...`. Writes
<train.output_dir>/semisup.json (top-1/top-5), metrics.csv and checkpoint.pth. A folder that
holds a run is continued only with --resume, started over only with --overwrite; one process at a time.
"""

import sys
from pathlib import Path

from seed_core import distributed as du
from seed_core.config import load_config

from ..imagenet.schema import SemisupConfig
from ..imagenet.semisup import run_semisup
from .common import OVERWRITE_HELP, build_parser, launchable, run_cli


def _run(args) -> int:
    cfg = load_config(SemisupConfig, args.config, args.overrides)
    result = run_semisup(cfg, resume=args.resume, overwrite=args.overwrite)
    if not du.is_main_process():
        return 0
    final = result["final"]
    print(
        f"{result['model']} fine-tuned on {result['train_images']} images ({Path(result['subset_file']).name}): "
        f"top-1 {final['top1']:.2f}, top-5 {final['top5']:.2f} -> {result['path']}"
    )
    return 0


@launchable("eval_semisup", SemisupConfig)
def main(argv=None) -> int:
    parser = build_parser(
        __doc__,
        config="YAML file under configs/eval/",
        resume="continue from <train.output_dir>/checkpoint.pth",
        overrides="key=value, e.g. data.subset_file=/path/10percent.txt",
    )
    parser.add_argument("--overwrite", action="store_true", help=OVERWRITE_HELP)
    return run_cli(_run, parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())

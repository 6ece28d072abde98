"""Detectron2 fine-tuning of a converted backbone, in the shape of Detectron2's projects
(setup -> main -> launch) and MoCo's ``detection/train_net.py``.

``run_seed`` trains and evaluates one seed in its own process group (``launch``);
:mod:`seed_transfer.detection.transfer` drives seeds, conversion and the summary.
"""

import json
import logging
import os
from pathlib import Path

from . import require_detectron2

require_detectron2()

from detectron2.config import get_cfg  # noqa: E402
from detectron2.engine import DefaultTrainer, default_setup, hooks, launch  # noqa: E402
from detectron2.utils import comm  # noqa: E402
from detectron2.utils.events import CommonMetricPrinter, JSONWriter, TensorboardXWriter  # noqa: E402

from ..catalog import dataset_spec  # noqa: E402
from ..norms import resolve_norms  # noqa: E402
from ..schedule import Schedule  # noqa: E402
from ...finetune import write_json  # noqa: E402
from .datasets import register_coco_json, register_tree_tiles, register_voc  # noqa: E402
from .evaluation import build_evaluator  # noqa: E402
from .heads import register_heads  # noqa: E402

log = logging.getLogger(__name__)
TRAIN_LOG = "train_log.jsonl"  # the torchvision engine's name for the same per-iteration log


class Trainer(DefaultTrainer):
    # A run needs one resume point, not its history (Detectron2 keeps every periodic
    # checkpoint: 18 of them, ~0.3 GB each, per COCO seed); the torchvision engine likewise
    # overwrites one checkpoint.pth. ``remove_resume_points`` drops the last one at the end.
    periodic_checkpoints_to_keep = 1

    def build_hooks(self):
        built = super().build_hooks()
        for hook in built:
            if isinstance(hook, hooks.PeriodicCheckpointer):
                hook.max_to_keep = self.periodic_checkpoints_to_keep
        return built

    def build_writers(self):
        # Detectron2's default JSONWriter writes OUTPUT_DIR/metrics.json, the file that marks a
        # finished seed (seeds.run_seeds): an interrupted run would then be taken as done.
        return [CommonMetricPrinter(self.max_iter), JSONWriter(os.path.join(self.cfg.OUTPUT_DIR, TRAIN_LOG)),
                TensorboardXWriter(self.cfg.OUTPUT_DIR)]

    @classmethod
    def build_evaluator(cls, cfg, dataset_name, output_folder=None):
        return build_evaluator(dataset_name, with_masks=cfg.MODEL.MASK_ON)


def register_datasets(names, data_root) -> None:
    """Register each configured dataset name from its files under ``data_root``."""
    for name in dict.fromkeys(names):
        spec = dataset_spec(name, data_root)
        if spec.kind == "voc":
            register_voc(name, spec.root, spec.split)
        elif spec.kind == "coco":
            register_coco_json(name, spec.json_file, spec.root)
        else:
            register_tree_tiles(spec.root, name="trees")


def remove_resume_points(output_dir) -> None:
    """Delete the periodic checkpoints (``model_<iter>.pth``) of a finished run.
    ``model_final.pth`` holds the same full state (model, optimizer, scheduler) and is what
    ``last_checkpoint`` names after the last iteration, so resuming still works."""
    for path in Path(output_dir).glob("model_[0-9]*.pth"):
        path.unlink()


def build_cfg(config_file: str, weights: str, output_dir: str, seed: int, opts=(),
              ims_per_batch: int | None = None, device: str = "cpu", world_size: int = 1):
    """The Detectron2 config of one run, and the effective (matched) schedule it uses."""
    register_heads()
    cfg = get_cfg()
    cfg.merge_from_file(config_file)
    cfg.merge_from_list(list(opts))
    cfg.MODEL.WEIGHTS = weights
    cfg.MODEL.DEVICE = device
    cfg.OUTPUT_DIR = output_dir
    cfg.SEED = seed
    resolve_norms(cfg.MODEL, device, world_size)  # SyncBN/naiveSyncBN alone (SyncBN: or on the CPU) are BN
    reference = Schedule(cfg.SOLVER.IMS_PER_BATCH, cfg.SOLVER.BASE_LR, cfg.SOLVER.MAX_ITER,
                         tuple(cfg.SOLVER.STEPS), cfg.SOLVER.WARMUP_ITERS)
    effective = reference.scaled_to(ims_per_batch) if ims_per_batch else reference
    if effective.max_iter < 2 or any(not 0 < step < effective.max_iter for step in effective.steps):
        # Detectron2's scheduler otherwise fails with "Total num_updates must be greater than ..."
        raise ValueError(f"{config_file}: SOLVER.MAX_ITER={effective.max_iter} must be >= 2 and every "
                         f"SOLVER.STEPS {list(effective.steps)} must lie inside (0, MAX_ITER)")
    cfg.SOLVER.IMS_PER_BATCH, cfg.SOLVER.BASE_LR = effective.ims_per_batch, effective.base_lr
    cfg.SOLVER.MAX_ITER, cfg.SOLVER.STEPS = effective.max_iter, effective.steps
    cfg.SOLVER.WARMUP_ITERS = effective.warmup_iters
    cfg.SOLVER.AMP.ENABLED = device == "cuda"
    cfg.freeze()
    return cfg, {"reference": reference.as_dict(), "effective": effective.as_dict(),
                 "norm": cfg.MODEL.RESNETS.NORM, "amp": cfg.SOLVER.AMP.ENABLED}


def _fresh_detectron2_loggers() -> None:
    """Drop the handlers of an earlier run in this process. Detectron2's ``setup_logger`` is
    cached by its arguments, and every new output folder adds a console and a file handler,
    so without this each further seed or comparison row printed every line once more."""
    from detectron2.utils.logger import setup_logger

    setup_logger.cache_clear()
    for name in ("detectron2", "fvcore"):
        logger = logging.getLogger(name)
        for handler in list(logger.handlers):
            logger.removeHandler(handler)
            handler.close()


def _main(config_file, weights, output_dir, seed, opts, ims_per_batch, data_root, resume, device, result_file):
    cfg, schedule = build_cfg(config_file, weights, output_dir, seed, opts, ims_per_batch, device,
                              comm.get_world_size())
    _fresh_detectron2_loggers()
    default_setup(cfg, {"config_file": config_file, "resume": resume})  # logs, cfg dump, seeding
    register_datasets([*cfg.DATASETS.TRAIN, *cfg.DATASETS.TEST], data_root)
    trainer = Trainer(cfg)
    trainer.resume_or_load(resume=resume)
    trainer.train()
    # DefaultTrainer's EvalHook already evaluated DATASETS.TEST after the last iteration.
    results = getattr(trainer, "_last_eval_results", None) or Trainer.test(cfg, trainer.model)
    if comm.is_main_process():
        write_json({"schedule": schedule, "results": results}, result_file)
        remove_resume_points(cfg.OUTPUT_DIR)
    return results


def run_seed(config_file: str, weights: str, output_dir: str, seed: int, opts=(), ims_per_batch=None,
             data_root=None, resume=False, num_gpus: int = 0, num_machines: int = 1, machine_rank: int = 0,
             dist_url: str = "auto") -> dict:
    """Train + evaluate one seed (``num_gpus`` processes via Detectron2's ``launch``, or the
    CPU with ``num_gpus=0``); returns the contents of ``<output_dir>/metrics.json``."""
    result_file = Path(output_dir) / "metrics.json"
    result_file.parent.mkdir(parents=True, exist_ok=True)
    device = "cuda" if num_gpus > 0 else "cpu"
    launch(_main, max(num_gpus, 1), num_machines=num_machines, machine_rank=machine_rank, dist_url=dist_url,
           args=(config_file, weights, output_dir, seed, tuple(opts), ims_per_batch, data_root, resume, device,
                 str(result_file)))
    return json.loads(result_file.read_text())


"""Detectron2 fine-tuning of a converted backbone, in the shape of Detectron2's projects
(setup -> main -> launch) and MoCo's ``detection/train_net.py``.

``run_seed`` trains and evaluates one seed of a :class:`~seed_transfer.detection.plan.DetPlan`
in its own process group (``launch``); :mod:`seed_transfer.detection.transfer` makes the plan,
converts the backbone and drives seeds and the summary.
"""

import json
import logging
import os
from pathlib import Path

from . import require_detectron2

require_detectron2()

from detectron2.config import get_cfg  # noqa: E402
from detectron2.data import build_detection_test_loader, build_detection_train_loader  # noqa: E402
from detectron2.engine import DefaultTrainer, default_setup, hooks, launch  # noqa: E402
from detectron2.utils import comm  # noqa: E402
from detectron2.utils.events import CommonMetricPrinter, JSONWriter, TensorboardXWriter  # noqa: E402

from seed_core.runtime import preemption  # noqa: E402

from ...finetune import METRICS_FILE, PreparedWeights, seed_folder, write_json  # noqa: E402
from ..catalog import dataset_spec  # noqa: E402
from ..plan import DetPlan  # noqa: E402
from .datasets import register_coco_json, register_tree_tiles, register_voc  # noqa: E402
from .evaluation import build_evaluator  # noqa: E402
from .heads import register_heads  # noqa: E402
from .mapper import NamingDatasetMapper  # noqa: E402

log = logging.getLogger(__name__)
TRAIN_LOG = "train_log.jsonl"  # the torchvision engine's name for the same per-iteration log
# Detectron2's checkpoints in a seed folder, ``last_checkpoint`` (what resume reads) first: what --overwrite removes
SEED_RUN_FILES = ("last_checkpoint", "model_*.pth")


class CheckpointAtSignal(hooks.HookBase):
    """In a submitit job, SLURM's pre-timeout / preemption signal (USR2) is held until the iteration that
    is running has ended; then a checkpoint of that iteration is saved (``model_<iter>.pth``, named by
    ``last_checkpoint``) and the signal goes to submitit's handler, which requeues the job with
    ``--resume``: the requeued seed continues from the iteration the signal interrupted, not from the
    last periodic checkpoint (:mod:`seed_core.runtime.preemption`, as the project's own loop does).
    Outside a submitit job, nothing changes. Detectron2 launched on several GPUs spawns processes of
    its own, where submitit's handler is not installed: there the periodic checkpoints remain."""

    def before_train(self):
        preemption.install()

    def after_step(self):
        if preemption.pending() is None:
            return
        iteration = self.trainer.iter
        self.trainer.checkpointer.save(f"model_{iteration:07d}", iteration=iteration)  # rank 0 writes
        log.warning("checkpoint saved after iteration %d on the signal: handing over to the requeue", iteration)
        preemption.hand_over()

    def after_train(self):
        preemption.uninstall()


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
        return [*built, CheckpointAtSignal()]  # last: after the periodic checkpoint and evaluation

    def build_writers(self):
        # Detectron2's default JSONWriter writes OUTPUT_DIR/metrics.json, the file that marks a
        # finished seed (seeds.run_seeds): an interrupted run would then be taken as done.
        return [
            CommonMetricPrinter(self.max_iter),
            JSONWriter(os.path.join(self.cfg.OUTPUT_DIR, TRAIN_LOG)),
            TensorboardXWriter(self.cfg.OUTPUT_DIR),
        ]

    @classmethod
    def build_train_loader(cls, cfg):
        return build_detection_train_loader(cfg, mapper=NamingDatasetMapper(cfg, is_train=True))

    @classmethod
    def build_test_loader(cls, cfg, dataset_name):
        return build_detection_test_loader(cfg, dataset_name, mapper=NamingDatasetMapper(cfg, is_train=False))

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


def build_cfg(plan: DetPlan, seed: int, seed_dir, weights_file: str | None):
    """The Detectron2 config of one seed: the plan's file and overrides as Detectron2 reads them,
    the backbone (None: Detectron2's own initialisation), then the plan's norms, schedule and AMP."""
    register_heads()
    cfg = get_cfg()
    # Detectron2's default (allow_unsafe=True) retries a file with !!python tags with yaml.unsafe_load
    cfg.merge_from_file(str(plan.request.config), allow_unsafe=False)
    cfg.merge_from_list(list(plan.request.opts))
    cfg.MODEL.WEIGHTS = weights_file or ""
    cfg.MODEL.DEVICE = plan.device
    cfg.OUTPUT_DIR = str(seed_dir)
    cfg.SEED = seed
    plan.apply(cfg)
    cfg.freeze()
    return cfg


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


def _main(plan: DetPlan, seed: int, seed_dir: Path, backbone: PreparedWeights):
    cfg = build_cfg(plan, seed, seed_dir, backbone.file)
    _fresh_detectron2_loggers()
    default_setup(cfg, {"config_file": str(plan.request.config), "resume": plan.request.resume})  # logs, dump, seeding
    register_datasets([*cfg.DATASETS.TRAIN, *cfg.DATASETS.TEST], plan.request.data_root)
    trainer = Trainer(cfg)
    trainer.resume_or_load(resume=plan.request.resume)
    trainer.train()
    # DefaultTrainer's EvalHook already evaluated DATASETS.TEST after the last iteration.
    results = getattr(trainer, "_last_eval_results", None) or Trainer.test(cfg, trainer.model)
    if comm.is_main_process():
        write_json(plan.seed_metrics(seed, backbone.init, results), seed_dir / METRICS_FILE)
        remove_resume_points(cfg.OUTPUT_DIR)
    return results


def run_seed(
    plan: DetPlan,
    seed: int,
    seed_dir,
    backbone: PreparedWeights,
    num_machines: int = 1,
    machine_rank: int = 0,
    dist_url: str = "auto",
) -> dict:
    """Train + evaluate one seed (``plan.world_size`` processes via Detectron2's ``launch``: one per
    GPU, or one on the CPU); returns the contents of ``<seed_dir>/metrics.json``. The seed folder is
    locked meanwhile, and an interrupted seed there is continued or started over only when asked
    (:func:`seed_transfer.finetune.seed_folder`)."""
    seed_dir = Path(seed_dir)
    with seed_folder(plan.request, seed_dir, "detectron2", holds=SEED_RUN_FILES[:1], removes=SEED_RUN_FILES):
        seed_dir.mkdir(parents=True, exist_ok=True)
        launch(
            _main,
            plan.world_size,
            num_machines=num_machines,
            machine_rank=machine_rank,
            dist_url=dist_url,
            args=(plan, seed, seed_dir, backbone),
        )
    return json.loads((seed_dir / METRICS_FILE).read_text())

"""Segmentation transfer of one initialisation: convert the backbone, fine-tune FCN / DeepLabV3
with the matched schedule for several seeds, and summarise mIoU / mAcc / aAcc as mean +- std.

Each seed writes ``<output_dir>/seed<k>/metrics.json`` and is skipped when that file exists, so
an interrupted comparison continues where it stopped. One process (CPU or one GPU) or several
(``torchrun``: every process runs this function; rank 0 writes the results).
"""

import itertools
import logging
import math
import os
import statistics
import time
from pathlib import Path

import torch

from seed_core.config import ConfigError, dump_config
from seed_core.distributed import is_launch_main_process

from ..finetune import (
    METRICS_FILE,
    FinetuneRequest,
    PreparedWeights,
    markdown_table,
    prepare_weights,
    run_seeds,
    seed_folder,
    seed_metrics,
    summarize,
    write_json,
    write_summary,
)
from .convert import convert_checkpoint
from .datasets import resolve_dataset
from .mmconfig import build_mmengine_config
from .mmseg_setup import import_mmseg, mmengine_safe_globals
from .plan import SegPlan, make_plan
from .schema import SegTransferConfig

log = logging.getLogger(__name__)
# MMEngine's checkpoints in a seed folder, ``last_checkpoint`` (what resume reads) first: what --overwrite removes
SEED_RUN_FILES = ("last_checkpoint", "iter_*.pth", "epoch_*.pth")
ENGINE = "mmsegmentation"
SUMMARY_METRICS = ("mIoU", "mAcc", "aAcc")
_RUN_IDS = itertools.count()


def _none_if_nan(value: float) -> float | None:
    return None if value is None or math.isnan(value) else float(value)


def prepare_backbone(request: FinetuneRequest, depth: int | None) -> tuple[PreparedWeights, int]:
    """(the backbone for mmseg's ResNet, its depth): the checkpoint converted into the output folder,
    or a random init of ``depth`` (``model.depth``, which a checkpoint of another depth contradicts)."""
    backbone = prepare_weights(request, request.output_dir / "backbone_mmseg.pth", convert_checkpoint)
    if backbone.file is None:
        if depth is None:
            raise ConfigError("a random-init backbone needs its depth: add model.depth=50 (or 18, 34, 101)")
        return backbone, depth
    if depth is not None and depth != backbone.init["depth"]:
        raise ConfigError(
            f"model.depth={depth} but {request.weights} is a ResNet-{backbone.init['depth']}; drop "
            "model.depth to take the checkpoint's"
        )
    return backbone, backbone.init["depth"]


def run_seed(
    cfg: SegTransferConfig, seed: int, seed_dir: Path, backbone: PreparedWeights, depth: int, resume: bool = False
) -> dict:
    """Fine-tune and evaluate one seed; returns its ``metrics.json`` (:func:`seed_transfer.finetune.seed_metrics`
    with the ``dataset``, ``device``, ``processes`` and ``train_seconds``)."""
    import_mmseg()
    from mmengine.config import Config
    from mmengine.runner import Runner

    from .signal_hook import CheckpointAtSignal

    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    device = "cuda" if torch.cuda.is_available() else "cpu"
    if world_size > 1 and device == "cpu":  # MMEngine's launcher calls torch.cuda.set_device per process
        raise ConfigError(
            f"{world_size} processes without CUDA: MMEngine's torchrun launcher needs one GPU per "
            "process. On CPU run a single process (python tools/transfer_seg.py ...)."
        )
    data = resolve_dataset(cfg.data.dataset, cfg.data.root, seed_dir)
    mm, schedule = build_mmengine_config(
        cfg,
        data,
        depth=depth,
        backbone_file=backbone.file,
        work_dir=str(seed_dir),
        seed=seed,
        world_size=world_size,
        device=device,
    )
    mm["experiment_name"] = f"seed{seed}_{time.strftime('%Y%m%d_%H%M%S')}_{next(_RUN_IDS)}"
    mm["resume"] = resume and (seed_dir / "last_checkpoint").is_file()
    log.info("seed %d: %s on %s (%s), schedule %s", seed, cfg.model.head, cfg.data.dataset, device, schedule["rule"])
    with mmengine_safe_globals():  # resume reads MMEngine's own checkpoints
        runner = Runner.from_cfg(Config(mm))
        runner.register_hook(CheckpointAtSignal())  # SLURM's signal: checkpoint the running iteration, requeue
        start = time.perf_counter()
        runner.train()
        train_seconds = time.perf_counter() - start
        flat = runner.test()
    classes = list(data["classes"])
    results = {k: _none_if_nan(flat[k]) for k in SUMMARY_METRICS}
    results["per_class"] = {
        c: {m: _none_if_nan(flat.get(f"{m}.{c}", math.nan)) for m in ("IoU", "Acc")} for c in classes
    }
    return seed_metrics(
        ENGINE,
        seed,
        backbone.init,
        schedule,
        results,
        dataset={"name": cfg.data.dataset, **data["info"]},
        device=device,
        processes=world_size,
        train_seconds=round(train_seconds, 1),
    )


def per_class_mean(per_seed: list[dict]) -> dict:
    """Mean IoU of every class over the seeds where it is defined (None where never defined)."""
    classes = per_seed[0]["results"]["per_class"]
    out = {}
    for name in classes:
        values = [r["results"]["per_class"][name]["IoU"] for r in per_seed]
        values = [v for v in values if v is not None]
        out[name] = statistics.fmean(values) if values else None
    return out


def markdown_comparison(summaries: list[dict]) -> str:
    """One row per initialisation: mIoU, mAcc, aAcc as mean ± std over seeds."""
    return markdown_table(summaries, SUMMARY_METRICS)


def transfer(request: FinetuneRequest | SegPlan) -> dict:
    """Fine-tune and evaluate ``request.weights`` ("random", or any checkpoint the project reads) with
    the config ``request.config`` (``configs/seg/*.yaml``; ``opts`` are ``key=value`` overrides) for
    ``request.seeds`` seeds; returns (and writes to ``output_dir/summary.json``) ``{"name", "config",
    "weights", "seeds", "summary": {"mIoU": {"mean", "std", "values"}, "mAcc": ..., "aAcc": ...}, ...}``.
    A :class:`~.plan.SegPlan` (a comparison's, resolved before it ran anything) is run as it is."""
    plan = request if isinstance(request, SegPlan) else make_plan(request)  # fails early without the extra
    request, cfg = plan.request, plan.config
    request.output_dir.mkdir(parents=True, exist_ok=True)
    if is_launch_main_process():
        dump_config(cfg, request.output_dir / "config.yaml")
    backbone, depth = prepare_backbone(request, cfg.model.depth)

    def run_one(seed: int, seed_dir: Path) -> dict:
        with seed_folder(request, seed_dir, ENGINE, holds=SEED_RUN_FILES[:1], removes=SEED_RUN_FILES):
            result = run_seed(cfg, request.seed_offset + seed, seed_dir, backbone, depth, request.resume)
            if is_launch_main_process():
                write_json(result, seed_dir / METRICS_FILE)
        return result

    per_seed = run_seeds(request.output_dir, request.seeds, run_one, only=request.only_seed)
    if request.only_seed is not None:  # one job of a comparison DAG: the summary comes once every seed is done
        return per_seed[0]
    summary = summarize([r["results"] for r in per_seed], SUMMARY_METRICS)
    return write_summary(
        request,
        ENGINE,
        per_seed,
        summary,
        markdown_comparison,
        model={"head": cfg.model.head, "depth": depth, "norm": cfg.model.norm},
        dataset=per_seed[0]["dataset"],
        per_class_IoU=per_class_mean(per_seed),
    )


def run_segmentation_transfer(*args, **kwargs) -> dict:
    """:func:`transfer` of a resolved :class:`~.plan.SegPlan` (``run_segmentation_transfer(plan)``, as a
    comparison hands its plans down) or of ``FinetuneRequest(*args, **kwargs)``: the config file, the
    weights and the output folder, then keywords such as ``seeds``, ``opts`` and ``resume``
    (:class:`..finetune.FinetuneRequest`)."""
    if len(args) == 1 and not kwargs and isinstance(args[0], SegPlan):
        return transfer(args[0])
    return transfer(FinetuneRequest(*args, **kwargs))

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

from distill.config import dump_config, load_config
from distill.distributed import is_launch_main_process

from ..finetune import METRICS_FILE, mean_std, run_seeds, write_json
from .convert import convert_checkpoint
from .datasets import resolve_dataset
from .engine import import_mmseg, mmengine_safe_globals
from .mmconfig import build_mmengine_config
from .schema import SegTransferConfig

log = logging.getLogger(__name__)
SUMMARY_METRICS = ("mIoU", "mAcc", "aAcc")
_RUN_IDS = itertools.count()


def _none_if_nan(value: float) -> float | None:
    return None if value is None or math.isnan(value) else float(value)


def prepare_weights(weights: str | None, output_dir: Path, depth: int | None, arch: str | None = None,
                    layout: str = "auto", allow_unsafe_pickle: bool = False) -> tuple[str | None, int, dict]:
    """(mmseg weights file or None for random init, ResNet depth, description of the init)."""
    if weights in (None, "", "random"):
        if depth is None:
            raise ValueError("a random-init backbone needs its depth: add model.depth=50 (or 18, 34, 101)")
        return None, depth, {"init": "random"}
    out = output_dir / "backbone_mmseg.pth"
    report = convert_checkpoint(weights, out, arch=arch, layout=layout, allow_unsafe_pickle=allow_unsafe_pickle)
    if report["skipped"]:
        log.warning("keys not converted (not part of the ResNet backbone): %s", report["skipped"])
    if depth is not None and depth != report["depth"]:
        raise ValueError(f"model.depth={depth} but {weights} is a ResNet-{report['depth']}; drop model.depth "
                         "to take the checkpoint's")
    return str(out), report["depth"], {"init": "converted", **report}


def run_seed(cfg: SegTransferConfig, seed: int, seed_dir: Path, backbone_file: str | None, depth: int,
             resume: bool = False) -> dict:
    """Fine-tune and evaluate one seed; returns ``{"seed", "results", "schedule", "dataset", ...}``."""
    import_mmseg()
    from mmengine.config import Config
    from mmengine.runner import Runner

    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    device = "cuda" if torch.cuda.is_available() else "cpu"
    if world_size > 1 and device == "cpu":  # MMEngine's launcher calls torch.cuda.set_device per process
        raise ValueError(f"{world_size} processes without CUDA: MMEngine's torchrun launcher needs one GPU per "
                         "process. On CPU run a single process (python tools/transfer_seg.py ...).")
    data = resolve_dataset(cfg.data.dataset, cfg.data.root, seed_dir)
    mm, schedule = build_mmengine_config(cfg, data, depth=depth, backbone_file=backbone_file,
                                         work_dir=str(seed_dir), seed=seed, world_size=world_size, device=device)
    mm["experiment_name"] = f"seed{seed}_{time.strftime('%Y%m%d_%H%M%S')}_{next(_RUN_IDS)}"
    mm["resume"] = resume and (seed_dir / "last_checkpoint").is_file()
    log.info("seed %d: %s on %s (%s), schedule %s", seed, cfg.model.head, cfg.data.dataset, device, schedule["rule"])
    with mmengine_safe_globals():  # resume reads MMEngine's own checkpoints
        runner = Runner.from_cfg(Config(mm))
        start = time.perf_counter()
        runner.train()
        train_seconds = time.perf_counter() - start
        flat = runner.test()
    classes = list(data["classes"])
    results = {k: _none_if_nan(flat[k]) for k in SUMMARY_METRICS}
    results["per_class"] = {c: {m: _none_if_nan(flat.get(f"{m}.{c}", math.nan)) for m in ("IoU", "Acc")}
                            for c in classes}
    return {"seed": seed, "results": results, "schedule": schedule, "dataset": {"name": cfg.data.dataset,
            **data["info"]}, "device": device, "processes": world_size, "train_seconds": round(train_seconds, 1)}


def summarize(per_seed: list[dict]) -> dict:
    """Mean and (sample) std over seeds of mIoU, mAcc, aAcc (percent)."""
    summary = {}
    for metric in SUMMARY_METRICS:
        values = [r["results"][metric] for r in per_seed if r["results"].get(metric) is not None]
        if values:
            summary[metric] = mean_std(values)
    return summary


def per_class_mean(per_seed: list[dict]) -> dict:
    """Mean IoU of every class over the seeds where it is defined (None where never defined)."""
    classes = per_seed[0]["results"]["per_class"]
    out = {}
    for name in classes:
        values = [r["results"]["per_class"][name]["IoU"] for r in per_seed]
        values = [v for v in values if v is not None]
        out[name] = statistics.fmean(values) if values else None
    return out


def markdown_summary(name: str, summary: dict) -> str:
    return markdown_comparison([{"name": name, "summary": summary}])


def markdown_comparison(summaries: list[dict]) -> str:
    """One row per initialisation: mIoU, mAcc, aAcc as mean ± std over seeds."""
    lines = ["| init | " + " | ".join(SUMMARY_METRICS) + " |", "|---|---|---|---|"]
    for entry in summaries:
        metrics = entry["summary"]
        cells = [f"{metrics[m]['mean']:.2f} ± {metrics[m]['std']:.2f}" if m in metrics else "-"
                 for m in SUMMARY_METRICS]
        lines.append(f"| {entry['name']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def run_segmentation_transfer(config: str | Path, weights: str | None, output_dir: str | Path, seeds: int = 1,
                              name: str | None = None, data_root: str | None = None, opts=(), resume: bool = False,
                              arch: str | None = None, layout: str = "auto",
                              allow_unsafe_pickle: bool = False) -> dict:
    """Fine-tune and evaluate ``weights`` ("random", or any checkpoint the project reads) with the
    config ``config`` (``configs/seg/*.yaml``; ``opts`` are ``key=value`` overrides) for ``seeds``
    seeds; returns (and writes to ``output_dir/summary.json``) ``{"name", "config", "weights",
    "seeds", "summary": {"mIoU": {"mean", "std", "values"}, "mAcc": ..., "aAcc": ...}, ...}``."""
    if seeds < 1:
        raise ValueError(f"seeds must be >= 1, got {seeds}")
    import_mmseg()  # fail early, with the install command, when the extra is missing
    cfg = load_config(SegTransferConfig, config, list(opts))
    if data_root is not None:
        cfg.data.root = str(data_root)
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    if is_launch_main_process():
        dump_config(cfg, output_dir / "config.yaml")
    backbone_file, depth, init = prepare_weights(weights, output_dir, cfg.model.depth, arch, layout,
                                                 allow_unsafe_pickle)
    def run_one(seed: int, seed_dir: Path) -> dict:
        result = {**run_seed(cfg, seed, seed_dir, backbone_file, depth, resume), "init": init}
        if is_launch_main_process():
            write_json(result, seed_dir / METRICS_FILE)
        return result

    per_seed = run_seeds(output_dir, seeds, run_one)
    name = name or ("random" if init["init"] == "random" else Path(str(weights)).name.split(".")[0])
    summary = {"name": name, "engine": "mmsegmentation", "config": str(config), "weights": weights, "init": init,
               "model": {"head": cfg.model.head, "depth": depth, "norm": cfg.model.norm},
               "seeds": seeds, "schedule": per_seed[0]["schedule"], "dataset": per_seed[0]["dataset"],
               "summary": summarize(per_seed), "per_class_IoU": per_class_mean(per_seed)}
    if is_launch_main_process():
        write_json(summary, output_dir / "summary.json")
        (output_dir / "summary.md").write_text(markdown_summary(name, summary["summary"]) + "\n")
    return summary

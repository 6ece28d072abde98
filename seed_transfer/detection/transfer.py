"""Detection transfer of one initialisation: convert the backbone, fine-tune with the
matched schedule for several seeds, and summarise AP / AP50 / AP75 as mean +- std.

Each seed writes ``<output_dir>/seed<k>/metrics.json`` and is skipped when that file
exists, so an interrupted comparison continues where it stopped.

Engines (same configs, same protocol, same metrics.json): ``detectron2``
(:mod:`seed_transfer.detection.d2`, converts the backbone to a ``.pkl``) and ``torchvision``
(:mod:`seed_transfer.detection.tv`, loads the checkpoint directly; no Detectron2 import);
``auto`` takes Detectron2 when it is installed, else torchvision.
"""

import importlib.util
import json
import logging
from pathlib import Path

from distill.distributed import is_launch_main_process

from ..classification.report import fmt_score
from ..finetune import mean_std, run_seeds, write_json
from .convert import convert_checkpoint

log = logging.getLogger(__name__)
ENGINES = ("auto", "detectron2", "torchvision")
SUMMARY_METRICS = ("AP", "AP50", "AP75", "APs", "APm", "APl")


def resolve_engine(engine: str) -> str:
    """The engine to run: ``auto`` picks Detectron2 when it is installed, else torchvision (and
    logs which); ``detectron2`` without Detectron2 fails with the install instructions."""
    if engine not in ENGINES:
        raise ValueError(f"unknown engine {engine!r}; choose one of {', '.join(ENGINES)}")
    installed = importlib.util.find_spec("detectron2") is not None
    if engine == "auto":
        engine = "detectron2" if installed else "torchvision"
        log.info("detection engine: %s (--engine auto; Detectron2 %s)", engine,
                 "is installed" if installed else "is not installed")
    elif engine == "detectron2" and not installed:
        from .d2 import INSTALL_HINT

        raise ImportError(INSTALL_HINT + " Or use --engine torchvision, which needs no Detectron2.")
    return engine


def prepare_weights(weights: str | None, output_dir: Path, arch: str | None = None, layout: str = "auto",
                    allow_unsafe_pickle: bool = False) -> tuple[str, dict]:
    """The Detectron2 weights file for ``weights``: "" (random init, Detectron2's own
    initialisation), a ``.pkl`` as it is, or any checkpoint converted to ``.pkl``."""
    if weights in (None, "", "random"):
        return "", {"init": "random"}
    if str(weights).endswith(".pkl"):
        return str(weights), {"init": "detectron2 pkl"}
    out = output_dir / "backbone_d2.pkl"
    report = convert_checkpoint(weights, out, arch=arch, layout=layout, allow_unsafe_pickle=allow_unsafe_pickle)
    if report["skipped"]:
        log.warning("keys not converted: %s", report["skipped"])
    return str(out), {"init": "converted", **{k: report[k] for k in ("arch", "depth", "layout", "converted",
                                                                       "skipped", "dropped")}}


def summarize(per_seed: list[dict]) -> dict:
    """Mean and (sample) std over seeds of every task's metrics (``bbox``, ``segm``)."""
    summary = {}
    for task in ("bbox", "segm"):
        rows = [r["results"][task] for r in per_seed if task in r.get("results", {})]
        if not rows:
            continue
        summary[task] = {}
        for metric in SUMMARY_METRICS:
            values = [row[metric] for row in rows if metric in row]
            if values:
                summary[task][metric] = mean_std(values)
    return summary


def markdown_summary(name: str, summary: dict) -> str:
    return markdown_comparison([{"name": name, "summary": summary}])


def markdown_comparison(summaries: list[dict]) -> str:
    """One row per (initialisation, task): AP, AP50, AP75 as mean ± std over seeds."""
    lines = ["| init | task | " + " | ".join(SUMMARY_METRICS[:3]) + " |", "|---|---|---|---|---|"]
    for entry in summaries:
        for task, metrics in entry["summary"].items():
            cells = [fmt_score(metrics[m]["mean"], metrics[m]["std"]) if m in metrics else "-"
                     for m in SUMMARY_METRICS[:3]]
            lines.append(f"| {entry['name']} | {task} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def gather_summaries(paths) -> list[dict]:
    """Every ``summary.json`` written by :func:`run_detection_transfer` under ``paths``."""
    files = []
    for path in map(Path, paths):
        files += sorted(path.rglob("summary.json")) if path.is_dir() else [path]
    return [json.loads(f.read_text()) for f in files]


def run_detection_transfer(config_file: str, weights: str | None, output_dir: str | Path, seeds: int = 1,
                           name: str | None = None, engine: str = "auto", ims_per_batch: int | None = None,
                           num_gpus: int = 0, data_root: str | None = None, opts=(), resume: bool = False,
                           arch: str | None = None, layout: str = "auto", allow_unsafe_pickle: bool = False) -> dict:
    """Fine-tune and evaluate ``weights`` with ``config_file`` for ``seeds`` seeds; returns the summary."""
    engine = resolve_engine(engine)
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    if engine == "detectron2":
        d2_weights, init = prepare_weights(weights, output_dir, arch, layout, allow_unsafe_pickle)
        from .d2.train_net import run_seed as d2_run_seed  # imports Detectron2

        def run_seed(seed, seed_dir):
            return d2_run_seed(config_file, d2_weights, str(seed_dir), seed, opts, ims_per_batch, data_root, resume,
                               num_gpus)
    else:
        init = None  # the engine reports it in each seed's metrics.json
        from .tv.train import run_seed as tv_run_seed

        def run_seed(seed, seed_dir):
            return tv_run_seed(config_file, weights, str(seed_dir), seed, opts, ims_per_batch, data_root, resume,
                               num_gpus, arch, layout, allow_unsafe_pickle)

    per_seed = run_seeds(output_dir, seeds, run_seed)
    init = init or per_seed[0].get("init") or {"init": "random" if weights in (None, "", "random") else "checkpoint"}
    name = name or ("random" if init["init"] == "random" else Path(str(weights)).name.split(".")[0])
    summary = {"name": name, "engine": engine, "config": str(config_file), "weights": weights, "init": init,
               "seeds": seeds, "schedule": per_seed[0]["schedule"], "summary": summarize(per_seed)}
    if not is_launch_main_process():  # torchrun: one process writes the summary
        return summary
    write_json(summary, output_dir / "summary.json")
    (output_dir / "summary.md").write_text(markdown_summary(name, summary["summary"]) + "\n")
    return summary

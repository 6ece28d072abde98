"""Fine-tuning over several seeds, shared by detection and segmentation transfer: the request
(:class:`FinetuneRequest`), the backbone converted for the engine (:func:`prepare_weights`), one
folder per seed (``seed<k>/metrics.json`` in the one schema of :func:`seed_metrics`, skipped when
it exists, so an interrupted comparison continues), and mean ± std over the seeds
(:func:`summarize`, ``summary.json`` and its markdown row: :func:`write_summary`).

A seed folder has one writer at a time, and an interrupted seed (a checkpoint, no ``metrics.json``)
is continued only with ``resume`` (what a comparison always asks) or started over only with
``overwrite``; otherwise the command stops with one line naming both (:func:`seed_folder`).

Results files are strict JSON (:func:`write_json`): an undefined metric (NaN, e.g. COCO's APl
on a set without large objects) is written as ``null``, which ``jq`` and every JSON parser
read; a bare ``NaN`` is Python's extension, not JSON. Readers take ``null`` as undefined.
"""

import json
import logging
import math
import numbers
import statistics
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from seed_core.atomic import atomic_save
from seed_core.config import ConfigError
from seed_core.distributed import is_launch_main_process
from seed_core.runtime import TrainingInterrupted, check_writable, run_folder
from seed_core.runtime.setup import continue_command

from .backbones import RANDOM, is_random, weights_name
from .classification.report import fmt_score

log = logging.getLogger(__name__)
METRICS_FILE = "metrics.json"


def seed_metrics_file(output_dir: str | Path, seed: int) -> Path:
    """``<output_dir>/seed<k>/metrics.json``: written when fine-tuning seed ``k`` has finished."""
    return Path(output_dir) / f"seed{seed}" / METRICS_FILE


def run_seeds(
    output_dir: str | Path, seeds: int, run_one: Callable[[int, Path], dict], only: int | None = None
) -> list[dict]:
    """``run_one(seed, seed_dir)`` for every seed (``only``: that seed) without a ``seed_dir/metrics.json``
    (which ``run_one`` writes); the finished seeds' results are read back. Returns one dict per seed."""
    results = []
    for seed in range(seeds) if only is None else [only]:
        done = seed_metrics_file(output_dir, seed)
        seed_dir = done.parent
        if done.is_file():
            log.info("seed %d: %s exists, skipped", seed, done)
            results.append(json.loads(done.read_text()))
        else:
            results.append(run_one(seed, seed_dir))
    return results


@contextmanager
def seed_folder(
    request: "FinetuneRequest", seed_dir: str | Path, engine: str, holds: tuple[str, ...], removes: tuple[str, ...]
) -> Iterator[Path]:
    """``seed_dir`` as the run folder of one seed's fine-tuning by ``engine`` for the block: writable,
    locked, and an interrupted seed there (one of the files ``holds``, the engine's checkpoint)
    continued only with ``request.resume`` or started over only with ``request.overwrite``, which
    removes the files ``removes`` (glob patterns) (:func:`seed_core.runtime.run_folder`). Ctrl-C in the
    block (Detectron2's and MMEngine's loops, which are not the project's) becomes a
    :class:`~seed_core.runtime.TrainingInterrupted` naming the seed's last checkpoint and the command
    that continues it, as the project's own loops say it."""
    with run_folder(
        seed_dir,
        f"{engine} fine-tuning ({Path(seed_dir).name})",
        resume=request.resume,
        overwrite=request.overwrite,
        holds=holds,
        removes=removes,
        folder_key="run.output_dir",
    ) as folder:
        try:
            yield folder
        except KeyboardInterrupt:
            checkpoint = last_checkpoint(folder, holds[0])
            where = f"the last checkpoint is {checkpoint}" if checkpoint else "no checkpoint was written yet"
            raise TrainingInterrupted(
                f"interrupted (Ctrl-C) during the {engine} fine-tuning of {folder}: {where}; "
                f"continue with: {continue_command(request.resume)}"
            ) from None


def last_checkpoint(seed_dir: Path, marker: str) -> Path | None:
    """The checkpoint that continuing the seed in ``seed_dir`` reads: the file ``marker``, or for a
    ``last_checkpoint`` marker (Detectron2, MMEngine) the file it names; None when there is none."""
    path = seed_dir / marker
    if not path.is_file():
        return None
    if marker != "last_checkpoint":
        return path
    named = path.read_text().strip()  # Detectron2: a name in the folder; MMEngine: a path
    target = Path(named) if Path(named).is_absolute() else seed_dir / named
    return target if named and target.is_file() else None


def json_safe(value):
    """``value`` with every non-finite number as None (JSON null) and numpy/torch scalars as
    Python numbers, through dicts, lists and tuples."""
    if isinstance(value, dict):
        return {key: json_safe(v) for key, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if isinstance(value, bool | str) or value is None:
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real) or (hasattr(value, "item") and getattr(value, "ndim", None) == 0):
        value = float(value)
        return value if math.isfinite(value) else None
    return value


def json_line(obj) -> str:
    """One line of strict JSON (for ``.jsonl`` logs)."""
    return json.dumps(json_safe(obj), allow_nan=False)


def write_json(obj, path: str | Path) -> None:
    """``obj`` as strict, indented JSON at ``path`` (:func:`json_safe`), written atomically: a
    killed write cannot leave a truncated ``metrics.json`` that marks a seed as finished."""
    text = json.dumps(json_safe(obj), indent=2, allow_nan=False)
    atomic_save(text, path, dump=lambda t, f: f.write(t.encode()))


def mean_std(values: list[float | None]) -> dict:
    """``{"mean", "std" (sample; 0 for one value), "values"}`` of one metric over seeds. An
    undefined value (NaN, or None as read back from JSON null) makes both NaN."""
    values = [math.nan if v is None else float(v) for v in values]
    if any(math.isnan(v) for v in values):
        return {"mean": math.nan, "std": math.nan, "values": values}
    return {
        "mean": statistics.fmean(values),
        "std": statistics.stdev(values) if len(values) > 1 else 0.0,
        "values": values,
    }


# ---------------------------------------------------------------- the request and the weights


@dataclass(frozen=True)
class FinetuneRequest:
    """One fine-tuning transfer of one initialisation, as asked for (by a tool, a comparison or a
    test); detection adds its engine's keys (:class:`seed_transfer.detection.plan.DetRequest`)."""

    config: str | Path  # the protocol's config file (configs/det/, configs/seg/)
    weights: str | None  # any checkpoint the transfer tools read, or "random"
    output_dir: Path  # seed<k>/ folders, summary.json and summary.md
    seeds: int = 1
    name: str | None = None  # the row label; default: weights_name(weights)
    data_root: str | None = None
    opts: tuple[str, ...] = ()  # config overrides, in the protocol config's own syntax
    resume: bool = False  # an interrupted seed continues from its last checkpoint
    overwrite: bool = False  # an interrupted seed starts over (its checkpoints removed); finished seeds stay
    arch: str | None = None  # when the checkpoint does not record it
    layout: str = "auto"
    allow_unsafe_pickle: bool = False
    # fine-tune this seed only and write no summary (one job of a comparison run as a cluster DAG)
    only_seed: int | None = None
    # seed k (folder seed<k>) trains with the RNG seed seed_offset + k: a comparison's random-init
    # member m uses its own offset, so its initialisations and batches are its own, not member 0's
    seed_offset: int = 0

    def __post_init__(self):
        object.__setattr__(self, "output_dir", Path(self.output_dir))
        object.__setattr__(self, "opts", tuple(self.opts))

    @property
    def row(self) -> str:
        return self.name or weights_name(self.weights)

    def check(self) -> None:
        """The request's values, and an output folder this process can write (before anything is read)."""
        check_writable(self.output_dir, "run.output_dir")
        if self.seeds < 1:
            raise ConfigError(f"seeds={self.seeds} must be >= 1")
        if self.seed_offset < 0:
            raise ConfigError(f"seed_offset={self.seed_offset} must be >= 0")
        if self.only_seed is not None and not 0 <= self.only_seed < self.seeds:
            raise ConfigError(f"only_seed={self.only_seed} must be one of the seeds 0..{self.seeds - 1}")


@dataclass(frozen=True)
class PreparedWeights:
    """The backbone as an engine loads it."""

    file: str | None  # a converted backbone, the checkpoint itself, or None: a random init
    init: dict | None  # how the backbone is initialised (metrics.json's ``init``); None: the engine
    # records it when it loads ``file`` (the torchvision engine reads the architecture from it)


# A conversion report's keys that the init record keeps (both converters report them).
INIT_KEYS = ("arch", "depth", "layout", "converted", "skipped", "dropped")


def prepare_weights(request: FinetuneRequest, out_file: Path, convert: Callable[..., dict]) -> PreparedWeights:
    """``request.weights`` converted to an engine's own format by ``convert(weights, out_file, arch=,
    layout=, allow_unsafe_pickle=)`` (which returns a report with :data:`INIT_KEYS`); a random init
    converts nothing. Keys the converter did not convert are logged."""
    if is_random(request.weights):
        return PreparedWeights(None, {"init": RANDOM})
    report = convert(
        request.weights,
        out_file,
        arch=request.arch,
        layout=request.layout,
        allow_unsafe_pickle=request.allow_unsafe_pickle,
    )
    if report["skipped"]:
        log.warning("keys not converted (not part of the ResNet backbone): %s", report["skipped"])
    return PreparedWeights(str(out_file), {"init": "converted", **{key: report[key] for key in INIT_KEYS}})


# ---------------------------------------------------------------- results of a seed, summary over seeds


def seed_metrics(engine: str, seed: int, init: dict, schedule: dict, results: dict, **extra) -> dict:
    """A seed's ``metrics.json``, one schema for every fine-tuning engine: the ``engine``, the
    ``seed``, how the backbone was initialised (``init``), the ``schedule`` it trained with, its
    ``results`` (the protocol's metrics), then the engine's ``extra`` keys. Write it with
    :func:`write_json` (strict JSON: an undefined metric is null)."""
    return {"engine": engine, "seed": seed, "init": init, "schedule": schedule, "results": results, **extra}


def summarize(results: list[dict], metrics) -> dict:
    """``{metric: mean_std(...)}`` over the seeds' ``results`` (one dict of metrics per seed) for each
    of ``metrics`` some seed reports; one undefined value (None, NaN) makes mean and std NaN."""
    summary = {}
    for metric in metrics:
        values = [r[metric] for r in results if metric in r]
        if values:
            summary[metric] = mean_std(values)
    return summary


def markdown_table(summaries: list[dict], metrics, by_task: bool = False) -> str:
    """One row per initialisation (per initialisation and task with ``by_task``, where a summary
    holds ``{task: {metric: ...}}``): each metric as mean ± std over seeds, "-" where missing."""
    head = ["init", *(["task"] if by_task else []), *metrics]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for entry in summaries:
        for task, scores in entry["summary"].items() if by_task else [(None, entry["summary"])]:
            cells = [fmt_score(scores[m]["mean"], scores[m]["std"]) if m in scores else "-" for m in metrics]
            lines.append("| " + " | ".join([entry["name"], *([task] if by_task else []), *cells]) + " |")
    return "\n".join(lines)


def write_summary(
    request: FinetuneRequest,
    engine: str,
    per_seed: list[dict],
    summary: dict,
    table: Callable[[list[dict]], str],
    **extra,
) -> dict:
    """The transfer's ``summary.json`` (returned; and ``summary.md``, the row of ``table``), written
    by one process under torchrun: name, engine, config, weights, init and schedule (the first
    seed's), seeds, the engine's ``extra`` keys and ``summary`` (mean ± std per metric)."""
    record = {
        "name": request.row,
        "engine": engine,
        "config": str(request.config),
        "weights": request.weights,
        "init": per_seed[0]["init"],
        "seeds": request.seeds,
        "schedule": per_seed[0]["schedule"],
        **extra,
        "summary": summary,
    }
    if is_launch_main_process():
        write_json(record, request.output_dir / "summary.json")
        (request.output_dir / "summary.md").write_text(table([record]) + "\n")
    return record


def gather_summaries(paths) -> list[dict]:
    """Every ``summary.json`` under ``paths`` (folders searched recursively, or the files themselves)."""
    files = []
    for path in map(Path, paths):
        files += sorted(path.rglob("summary.json")) if path.is_dir() else [path]
    return [json.loads(f.read_text()) for f in files]

"""One comparison, end to end: SEED against plain self-supervised training (MoCo v2),
random init and (optionally) a supervised/teacher checkpoint, on classification transfer
(linear + kNN) and detection transfer, with a report.

    result = run_compare(load_config(CompareConfig, "configs/compare/demo.yaml", ["det.seeds=3"]))

Stages, each writing under ``output_dir`` and skipped when its outputs exist (so a
re-run after an interruption continues where it stopped):

- ``distill/<strategy>/``: one student per strategy from the *same* distillation config
  (same data, epochs, batch, augmentation); only ``distill.strategy`` differs.
- ``cls/<row>__<dataset>.json``: linear (C sweep) and kNN transfer of every row.
- ``det/<row>/``: detection fine-tuning of every ResNet row with one identical schedule.
- ``seg/<row>/``: segmentation fine-tuning (MMSegmentation, optional) of every ResNet row, likewise.
- ``report.md``, ``results.csv``, ``loss_curves.png``, ``results.png``: always rewritten.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path


from distill.config import ConfigError, dump_config, load_config, resolve_path
from distill.run_info import code_version, hardware_text
from distill.checkpoints import safe_load
from distill.schema import STRATEGIES, DistillConfig
from distill.teacher_cache import share_teacher_cache

from . import report as cls_report
from .backbones import PIXELS
from .cls_transfer import model_name
from .compare_table import differences, differences_markdown, results_table, write_results_csv
from .schema import TransferClsConfig
from .stale import stale_result, stale_student

log = logging.getLogger(__name__)
REPO_ROOT = Path(__file__).resolve().parents[1]
TEACHER_CACHE_DIR = "teacher_cache"  # <output_dir>/teacher_cache, shared by runs with the same teacher views
MAX_LISTED_UNITS = 12  # the report lists per-unit values up to this many (few-shot has hundreds of episodes)


@dataclass
class DistillStageConfig:
    config: str = "configs/distill/demo.yaml"  # one distillation config shared by every strategy
    overrides: list[str] = field(default_factory=list)  # key=value for that config (data paths, budget)
    strategies: list[str] = field(default_factory=lambda: ["seed", "moco"])  # one row each
    # Independent distillations per strategy (train.seed = the config's seed + 0, 1, ...): each
    # row's scores and differences then include the distillation's own seed-to-seed noise.
    seeds: int = 1


@dataclass
class RowsConfig:
    random: bool = True  # a random-init row (student_arch)
    pixels: bool = False  # a raw-pixel row (classification only): what the input alone gives
    teacher: str | None = None  # a supervised / teacher checkpoint for an extra row (null: none)
    teacher_arch: str | None = None  # its architecture (null: what the checkpoint records)
    teacher_name: str = "teacher"  # its row label


@dataclass
class ClsStageConfig:
    enabled: bool = True
    config: str = "configs/transfer/cls/digits_demo.yaml"
    overrides: list[str] = field(default_factory=list)  # key=value for the TransferClsConfig, every row
    datasets: list[str] = field(default_factory=list)  # "name" or "name:root"; empty: the config's dataset


@dataclass
class DetStageConfig:
    enabled: bool = True
    config: str = "configs/det/trees_R_18_C4_demo.yaml"  # Detectron2 YAML; one schedule for every row
    opts: list[str] = field(default_factory=list)  # Detectron2 KEY VALUE pairs, the same for every row
    seeds: int = 1  # fine-tuning seeds per row (mean +- std)
    data_root: str | None = None  # dataset folder (the demo's tree tiles are built here on first use)
    num_gpus: int = 0
    ims_per_batch: int | None = None  # null: the config's (the schedule is matched by the library)
    # auto: Detectron2 when installed, else the torchvision engine (which also takes
    # MobileNet/EfficientNet/timm rows with an FPN config); or detectron2 / torchvision
    engine: str = "auto"


@dataclass
class SegStageConfig:
    enabled: bool = False  # needs the [seg] extra (MMSegmentation)
    config: str = "configs/seg/demo_fcn-d8_voc_example.yaml"  # one schedule for every row
    opts: list[str] = field(default_factory=list)  # key=value for that config, the same for every row
    seeds: int = 1
    data_root: str | None = None  # dataset folder (the offline example is written here on first use)


@dataclass
class CompareConfig:
    output_dir: str = "outputs/compare"
    title: str = "SEED vs plain self-supervised training"
    note: str = ""  # written at the top of the report (e.g. "small-data numbers, not ImageNet numbers")
    student_arch: str = "resnet18"
    distill: DistillStageConfig = field(default_factory=DistillStageConfig)
    rows: RowsConfig = field(default_factory=RowsConfig)
    cls: ClsStageConfig = field(default_factory=ClsStageConfig)
    det: DetStageConfig = field(default_factory=DetStageConfig)
    seg: SegStageConfig = field(default_factory=SegStageConfig)

    def validate(self) -> None:
        bad = [s for s in self.distill.strategies if s not in STRATEGIES]
        if bad:
            raise ConfigError(f"distill.strategies: unknown {bad}; choose from {', '.join(STRATEGIES)}")
        if len(set(self.distill.strategies)) != len(self.distill.strategies):
            raise ConfigError(f"distill.strategies lists a strategy twice: {self.distill.strategies}")
        for stage in ("distill", "det", "seg"):
            if getattr(self, stage).seeds < 1:
                raise ConfigError(f"{stage}.seeds={getattr(self, stage).seeds} must be >= 1")
        from .detection.transfer import ENGINES

        if self.det.engine not in ENGINES:
            raise ConfigError(f"det.engine={self.det.engine!r}; choose one of {', '.join(ENGINES)}")
        if len(self.det.opts) % 2:
            raise ConfigError(f"det.opts must be KEY VALUE pairs, got {len(self.det.opts)} items")


@dataclass
class Row:
    """One initialisation: its label, weights (a path or "random") and architecture.

    ``member`` tells independent instances of the same row apart: distillation seed k of a
    strategy, or random-init seed k; the table aggregates the members of a row by ``name``.
    """

    name: str
    weights: str
    arch: str | None = None
    strategy: str | None = None  # the distillation strategy that produced it
    member: int = 0

    @property
    def tag(self) -> str:
        """The member's name in output paths and per-run results: ``seed``, ``seed-s1``, ..."""
        return self.name if self.member == 0 else f"{self.name}-s{self.member}"


def config_path(path: str) -> Path:
    """A config path as given, else relative to the repository (so the presets run from anywhere)."""
    given = Path(path).expanduser()
    return given if given.is_file() or given.is_absolute() else REPO_ROOT / given


def _row_dir_name(name: str) -> str:
    return name.replace("+", "_")


class Stages:
    """Records what each stage did (``ran`` / ``skipped``) and how long it took."""

    def __init__(self, path: Path):
        self.path, self.records = path, []
        previous = json.loads(path.read_text()) if path.is_file() else []
        # a skipped stage reports the seconds it took when it ran (kept in <output_dir>/stages.json)
        self.previous = {(r["stage"], r["row"]): r["seconds"] for r in previous}

    def run(self, stage: str, row: str, done: bool, fn):
        tic = time.perf_counter()
        if done:
            log.info("[%s] %s: outputs exist, skipped", stage, row)
        else:
            log.info("[%s] %s: running", stage, row)
        value = fn()
        seconds = self.previous.get((stage, row), 0.0) if done else time.perf_counter() - tic
        self.records.append({"stage": stage, "row": row, "status": "skipped" if done else "ran",
                             "seconds": round(seconds, 2)})
        merged = {(r["stage"], r["row"]): r for r in self.records}
        self.path.write_text(json.dumps([*({"stage": k[0], "row": k[1], "seconds": v} for k, v in self.previous.items()
                                           if k not in merged), *self.records], indent=2))
        if not done:
            log.info("[%s] %s: done in %.0f s", stage, row, seconds)
        return value


# ---------------------------------------------------------------- distillation
def _member_config(cfg: CompareConfig, strategy: str, member: int) -> DistillConfig:
    tag = Row(strategy, "", member=member).tag
    out = Path(cfg.output_dir) / "distill" / _row_dir_name(tag)
    overrides = [*cfg.distill.overrides, f"student.arch={cfg.student_arch}", f"distill.strategy={strategy}",
                 f"train.output_dir={out}"]
    dcfg = load_config(DistillConfig, config_path(cfg.distill.config), overrides)
    if member:
        dcfg = load_config(DistillConfig, config_path(cfg.distill.config),
                           [*overrides, f"train.seed={dcfg.train.seed + member}"])
    return dcfg


def distill_configs(cfg: CompareConfig) -> dict[tuple[str, int], DistillConfig]:
    """Every distillation by (strategy, member): the shared config with only the strategy (and, for
    member k > 0, the seed + k and the folder ``<strategy>-s<k>``) changed. Runs that need the same
    teacher embeddings (e.g. ``seed`` and ``l2`` rows) share ``<output_dir>/teacher_cache``."""
    configs = {(s, m): _member_config(cfg, s, m) for s in cfg.distill.strategies for m in range(cfg.distill.seeds)}
    share_teacher_cache(list(configs.values()), Path(cfg.output_dir) / TEACHER_CACHE_DIR)
    return configs


def distill_config(cfg: CompareConfig, strategy: str, member: int = 0) -> DistillConfig:
    """The distillation of ``strategy``'s ``member``-th seed (see :func:`distill_configs`; a strategy
    the config does not list gets its own, unshared config)."""
    return distill_configs(cfg).get((strategy, member)) or _member_config(cfg, strategy, member)


def student_is_complete(path: Path, dcfg: DistillConfig) -> bool:
    """The export exists and records the last step of the configured schedule."""
    if not path.is_file():
        return False
    meta = safe_load(path).get("meta", {})
    step, total = meta.get("step"), meta.get("total_steps")
    target = min(total, dcfg.train.max_steps) if total is not None and dcfg.train.max_steps else total
    return step is not None and target is not None and step >= target


def check_not_stale(cfg: CompareConfig) -> None:
    """Refuse, before anything runs, an ``output_dir`` whose students or classification results were
    produced by other settings, naming them (the rule of :mod:`seed_transfer.stale`)."""
    problems = []
    for dcfg in distill_configs(cfg).values():
        changed = stale_student(dcfg)
        if changed:
            problems.append(f"{dcfg.train.output_dir}: {'; '.join(changed)}")
    if cfg.cls.enabled:
        for dataset in cfg.cls.datasets or [None]:
            ccfg = cls_config(cfg, Row("random", "random", cfg.student_arch), dataset)
            for result in sorted(Path(ccfg.output_dir).glob(f"*__{ccfg.data.name}.json")):
                changed = stale_result(json.loads(result.read_text()).get("config"), ccfg)
                if changed:
                    problems.append(f"{result}: {'; '.join(changed)}")
    if problems:
        raise ConfigError(f"{cfg.output_dir} holds outputs of other settings ({' | '.join(problems)}); use another "
                          f"output_dir for the new settings, or delete those outputs to redo them")


def run_distill(cfg: CompareConfig, stages: Stages) -> list[Row]:
    from distill.engine import STUDENT_NAME, train

    rows = []
    for (strategy, member), dcfg in distill_configs(cfg).items():
        student = Path(dcfg.train.output_dir) / STUDENT_NAME
        done = student_is_complete(student, dcfg)
        row = Row(strategy, str(student), cfg.student_arch, strategy, member)
        row.weights = str(stages.run("distill", row.tag, done, lambda: student if done else train(dcfg, resume=True)))
        rows.append(row)
    return rows


def build_rows(cfg: CompareConfig, students: list[Row]) -> list[Row]:
    """The students, then random init (one member per distillation seed: random-init seeds
    0, 1, ...), raw pixels and the teacher (fixed, one member each)."""
    rows = list(students)
    if cfg.rows.random:
        rows += [Row("random", "random", cfg.student_arch, member=k) for k in range(cfg.distill.seeds)]
    if cfg.rows.pixels:
        rows.append(Row("pixels", PIXELS, PIXELS))
    if cfg.rows.teacher:
        rows.append(Row(cfg.rows.teacher_name, cfg.rows.teacher, cfg.rows.teacher_arch))
    return rows


# ---------------------------------------------------------------- classification
def cls_config(cfg: CompareConfig, row: Row, dataset: str | None) -> TransferClsConfig:
    overrides = [*cfg.cls.overrides, f"model.weights={row.weights}", f"model.name={row.tag}",
                 f"output_dir={Path(cfg.output_dir) / 'cls'}"]
    if row.weights == "random":
        overrides.append(f"model.seed={row.member}")
    if row.arch:
        overrides.append(f"model.arch={row.arch}")
    if dataset:
        name, _, root = dataset.partition(":")
        overrides += [f"data.name={name}"] + ([f"data.root={root}"] if root else [])
    return load_config(TransferClsConfig, config_path(cfg.cls.config), overrides)


def run_cls(cfg: CompareConfig, rows: list[Row], stages: Stages) -> list[dict]:
    from .cls_transfer import run_cls_transfer

    results = []
    for dataset in cfg.cls.datasets or [None]:
        for row in rows:
            ccfg = cls_config(cfg, row, dataset)
            out = Path(ccfg.output_dir) / f"{model_name(ccfg)}__{ccfg.data.name}.json"
            done = out.is_file()
            result = stages.run(f"cls {ccfg.data.name}", row.tag, done,
                                lambda: json.loads(out.read_text()) if done else run_cls_transfer(ccfg))
            results.append({**result, "row": row.name, "member": row.member})
    return results


# ---------------------------------------------------------------- detection
def det_supported(row: Row, engine: str = "detectron2") -> bool:
    """Detectron2 (and MMSegmentation) transfer converts ResNet backbones (the student exports
    record their arch); the torchvision engine takes any backbone (with an FPN config)."""
    if row.weights == PIXELS:
        return False
    return engine == "torchvision" or row.weights == "random" or (row.arch or "resnet").startswith("resnet")


def _run_finetuning(stage: str, cfg: CompareConfig, rows: list[Row], stages: Stages, seeds: int, engine: str,
                    transfer) -> dict[tuple[str, int], dict]:
    """``transfer(row, out)`` for every row the engine can build, each in ``<output_dir>/<stage>/<tag>``;
    skipped when its ``summary.json`` covers ``seeds`` seeds. Returns the summaries by (row name,
    member). A random init is fine-tuned once: its initialisation already follows the fine-tuning seed."""
    summaries = {}
    for row in rows:
        if not det_supported(row, engine):
            log.info("[%s] %s: %s is not a ResNet, no row with the %s engine", stage, row.name, row.arch, engine)
            continue
        if row.weights == "random" and row.member:
            continue
        out = Path(cfg.output_dir) / stage / _row_dir_name(row.tag)
        summary_file = out / "summary.json"
        done = summary_file.is_file() and json.loads(summary_file.read_text()).get("seeds") == seeds
        summaries[(row.name, row.member)] = stages.run(stage, row.tag, done, lambda: json.loads(
            summary_file.read_text()) if done else transfer(row, out))
    return summaries


def run_det(cfg: CompareConfig, rows: list[Row], stages: Stages) -> dict[tuple[str, int], dict]:
    from .detection.transfer import resolve_engine, run_detection_transfer

    engine = resolve_engine(cfg.det.engine)
    return _run_finetuning("det", cfg, rows, stages, cfg.det.seeds, engine, lambda row, out: run_detection_transfer(
        str(config_path(cfg.det.config)), row.weights, out, seeds=cfg.det.seeds, name=row.name,
        data_root=resolve_path(cfg.det.data_root), opts=list(cfg.det.opts), num_gpus=cfg.det.num_gpus,
        ims_per_batch=cfg.det.ims_per_batch, arch=row.arch, engine=engine,
        resume=True))  # an interrupted seed continues from its last checkpoint (none: from the weights)


def _resnet_depth(arch: str | None) -> int | None:
    digits = "".join(ch for ch in (arch or "") if ch.isdigit())
    return int(digits) if (arch or "").startswith("resnet") and digits else None


def run_seg(cfg: CompareConfig, rows: list[Row], stages: Stages) -> dict[tuple[str, int], dict]:
    from .segmentation.transfer import run_segmentation_transfer

    def transfer(row: Row, out: Path) -> dict:
        # a random init has no checkpoint to take the depth from
        depth = [f"model.depth={_resnet_depth(row.arch)}"] if row.weights == "random" else []
        return run_segmentation_transfer(config_path(cfg.seg.config), row.weights, out, seeds=cfg.seg.seeds,
                                         name=row.name, data_root=resolve_path(cfg.seg.data_root),
                                         opts=[*cfg.seg.opts, *depth], arch=row.arch)

    # MMSegmentation's ResNet takes ResNet rows only: the Detectron2 rule
    return _run_finetuning("seg", cfg, rows, stages, cfg.seg.seeds, "detectron2", transfer)


# ---------------------------------------------------------------- report
def plot_loss_curves(runs: dict[str, Path], path: Path) -> bool:
    """Distillation loss against step, one line per strategy (from each run's metrics.csv)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, max(1, len(runs)), figsize=(4.5 * max(1, len(runs)), 3.5), squeeze=False)
    drawn = False
    for ax, (name, metrics_csv) in zip(axes[0], runs.items()):
        if not metrics_csv.is_file():
            continue
        with open(metrics_csv) as f:
            rows = list(csv.DictReader(f))
        steps = [int(float(r["step"])) for r in rows]
        ax.plot(steps, [float(r["loss"]) for r in rows], marker=".")
        ax.set(xlabel="step", ylabel="loss", title=f"distill: {name}")
        drawn = True
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return drawn


def plot_results(columns: list[str], table: list[dict], path: Path) -> None:
    """One bar chart per task column, one bar per row: the mean with the std over its units as error bar."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, max(1, len(columns)), figsize=(3.2 * max(1, len(columns)), 3.5), squeeze=False)
    names = [e["row"] for e in table]
    for ax, column in zip(axes[0], columns):
        values = [e.get(column) if e.get(column) is not None else math.nan for e in table]  # nan: no bar
        errors = [e.get(f"{column} std") or 0.0 for e in table]
        ax.bar(range(len(names)), values, yerr=errors, capsize=3, color=[f"C{i}" for i in range(len(names))])
        ax.set_xticks(range(len(names)), names, rotation=30, ha="right", fontsize=8)
        ax.set_title(column, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _budget_lines(cfg: CompareConfig) -> list[str]:
    """Teacher, data and budget of the distillation, from the (shared) SEED config, and what
    the finished students record (steps, teacher-cache use)."""
    if not cfg.distill.strategies:
        return []
    dcfg = distill_config(cfg, cfg.distill.strategies[0])
    steps, caches = [], []
    for (strategy, member), member_cfg in distill_configs(cfg).items():
        student = Path(member_cfg.train.output_dir) / "student.pth"
        if student.is_file():
            meta = safe_load(student).get("meta", {})
            tag = Row(strategy, "", member=member).tag
            steps.append(f"{tag}: {meta.get('step')}/{meta.get('total_steps')} steps")
            cache = meta.get("teacher_cache")
            if cache:
                caches.append(f"{tag} {cache['mode']} ({cache['read_steps']} steps read, "
                              f"{cache['computed_steps']} run by the teacher)")
    lines = [
        f"- **Teacher** (SEED rows): `{dcfg.teacher.arch}` from `{dcfg.teacher.weights}` "
        f"(teacher input {dcfg.teacher.input_size or dcfg.data.image_size} px); MoCo rows use no teacher.",
        f"- **Student**: `{cfg.student_arch}`; **distillation data**: {_distill_data(dcfg)}, "
        f"{dcfg.data.image_size} px crops, MoCo v2 augmentation.",
        f"- **Budget** (identical for every strategy): {dcfg.optim.epochs} epochs, batch {dcfg.optim.batch_size}, "
        f"base lr {dcfg.optim.base_lr}, queue {dcfg.distill.queue_size}, {cfg.distill.seeds} distillation seed(s) "
        f"per strategy" + (f" ({'; '.join(steps)})" if steps else ""),
        f"- **Distillation config**: `{cfg.distill.config}` + `{' '.join(cfg.distill.overrides) or '(no overrides)'}`",
    ]
    if caches:
        lines.append(f"- **Teacher cache** (`{TEACHER_CACHE_DIR}/`, bit-identical to a live teacher): {'; '.join(caches)}")
    return lines


def _distill_data(dcfg: DistillConfig) -> str:
    """The distillation set by name and size (the folder sources are not listed: they can be ImageNet)."""
    names = {"stamps": "the Tux Paint stamps outside the evaluation categories (distill/stamps.py)",
             "demo": "crops of the scikit-image / scikit-learn photos", "filelist": f"`{dcfg.data.file_list}`"}
    if dcfg.data.source == "imagefolder":
        return f"`{dcfg.data.root}`"
    from distill.data import build_source_dataset

    kwargs = {"length": dcfg.data.demo_length} if dcfg.data.source == "demo" else {}
    size = len(build_source_dataset(dcfg.data.source, resolve_path(dcfg.data.root),
                                    resolve_path(dcfg.data.file_list), **kwargs))
    unit = "crops a virtual epoch" if dcfg.data.source == "demo" else "images"
    return f"{names[dcfg.data.source]}, {size} {unit}"


def write_report(cfg: CompareConfig, rows: list[Row], cls_results: list[dict], det: dict[tuple[str, int], dict],
                 stages: list[dict], wall_seconds: float, seg: dict[tuple[str, int], dict] | None = None,
                 command: str | None = None) -> dict:
    out = Path(cfg.output_dir)
    names = list(dict.fromkeys(r.name for r in rows))
    weights = {name: " ".join(r.weights for r in rows if r.name == name) for name in names}
    columns, table = results_table(names, weights, cls_results, [det, seg or {}])
    diffs = differences(columns, table)
    write_results_csv(columns, table + diffs, out / "results.csv")
    plot_results(columns, table, out / "results.png")
    runs = {s: Path(distill_config(cfg, s).train.output_dir) / "metrics.csv" for s in cfg.distill.strategies}
    has_curves = bool(runs) and plot_loss_curves(runs, out / "loss_curves.png")

    lines = [f"# {cfg.title}", ""]
    if cfg.note:
        lines += [f"> {cfg.note.strip()}", ""]
    lines += _budget_lines(cfg)
    if cfg.cls.enabled:
        ccfg = cls_config(cfg, Row("random", "random", cfg.student_arch), None)
        fewshot = getattr(ccfg, "fewshot", None)
        episodes = (f", few-shot: {fewshot.n_way}-way prototype classifier on {fewshot.episodes} episodes, the same "
                    f"episodes for every row" if fewshot is not None and fewshot.enabled else "")
        lines.append(f"- **Classification transfer**: `{cfg.cls.config}` (frozen features {ccfg.features.resize} px, "
                     f"logistic regression over {ccfg.linear.num_c} C values chosen on validation, kNN k={ccfg.knn.k}"
                     f"{episodes}); scores in % on the test split")
    if cfg.det.enabled:
        lines.append(f"- **Detection transfer**: `{cfg.det.config}` fine-tuned from every row the engine builds with one "
                     f"schedule (`{' '.join(cfg.det.opts) or 'as configured'}`), {cfg.det.seeds} seed(s); "
                     f"COCO-style AP (%)")
    if cfg.seg.enabled:
        lines.append(f"- **Segmentation transfer**: `{cfg.seg.config}` fine-tuned from every ResNet row with one "
                     f"schedule (`{' '.join(cfg.seg.opts) or 'as configured'}`), {cfg.seg.seeds} seed(s); mIoU (%)")
    lines.append(f"- **Units**: {cfg.distill.seeds} independent distillation(s) per strategy (and as many random-init "
                 f"seeds) x the fine-tuning seeds; each cell is the mean ± std over its units")
    code = code_version()
    commit = f"{(code.get('git_commit') or 'unknown')[:10]}{' (uncommitted changes)' if code.get('git_dirty') else ''}"
    lines += [f"- **Compute time** of the stages: {sum(s['seconds'] for s in stages) / 60:.1f} min "
              f"(this invocation: {wall_seconds / 60:.1f} min wall, "
              f"{sum(s['status'] == 'skipped' for s in stages)} of {len(stages)} stages already done); "
              f"code {code.get('package_version', '')} at commit `{commit}`",
              f"- **Hardware** (of this invocation): {hardware_text()}"]
    if command:
        lines.append(f"- **Command**: `{command}`")
    lines.append("")

    header = ["init"] + [c.replace(" ", " (", 1) + ")" if " " in c else c for c in columns]
    lines += ["## Results", "", "| " + " | ".join(header) + " |", "|---" * len(header) + "|"]
    for entry in table:
        cells = [cls_report.fmt_score(entry.get(c), entry.get(f"{c} std") if len(entry.get(f"{c} values", [])) > 1
                                      else None) for c in columns]
        lines.append(f"| {entry['row']} | " + " | ".join(cells) + " |")
    lines.append("")
    if diffs:
        lines += ["## Differences", ""] + differences_markdown(columns, diffs)
    per_unit = [f"{e['row']} {c}: {', '.join(f'{v:.2f}' for v in e[f'{c} values'])}" for e in table
                for c in columns if 1 < len(e.get(f"{c} values", [])) <= MAX_LISTED_UNITS]
    if per_unit:
        lines += ["Per-unit values (member by member, then seed by seed; few-shot episodes in `results.csv`): "
                  + "; ".join(per_unit), ""]
    lines += ["![results](results.png)", ""]
    if has_curves:
        lines += ["## Distillation loss", "", "![loss curves](loss_curves.png)", ""]
    if cls_results:
        lines += ["## Classification transfer (details)", "", cls_report.markdown_table(cls_results, "linear"), "",
                  cls_report.markdown_table(cls_results, "knn"), "", "![validation curves](cls/val_curves.png)", ""]
    lines += ["## Stages", "", "| stage | row | this invocation | seconds (when it ran) |", "|---|---|---|---|"]
    lines += [f"| {s['stage']} | {s['row']} | {s['status']} | {s['seconds']:.0f} |" for s in stages]
    (out / "report.md").write_text("\n".join(lines) + "\n")
    return {"columns": columns, "table": _plain(table), "differences": _plain(diffs)}


def _plain(entries: list[dict]) -> list[dict]:
    """The table without its in-memory keys (unit maps, Difference objects), as JSON-able dicts."""
    return [{k: v for k, v in e.items() if not k.endswith((" units", " diff"))} for e in entries]


# ---------------------------------------------------------------- entry point
def run_compare(cfg: CompareConfig, command: str | None = None) -> dict:
    """Run every stage (skipping finished ones) and write the report (``command``, the command
    line that ran it, goes at its top); returns rows, results and stage records."""
    tic = time.perf_counter()
    out = Path(cfg.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    check_not_stale(cfg)
    dump_config(cfg, out / "config.yaml")
    stages = Stages(out / "stages.json")
    rows = build_rows(cfg, run_distill(cfg, stages))
    cls_results = run_cls(cfg, rows, stages) if cfg.cls.enabled else []
    if cls_results:
        cls_report.write_csv(cls_results, out / "cls" / "cls_results.csv")
        cls_report.plot_val_curves(cls_results, out / "cls" / "val_curves.png")
    det = run_det(cfg, rows, stages) if cfg.det.enabled else {}
    seg = run_seg(cfg, rows, stages) if cfg.seg.enabled else {}
    report = write_report(cfg, rows, cls_results, det, stages.records, time.perf_counter() - tic, seg,
                          command)
    log.info("report written to %s", out / "report.md")
    return {"rows": [r.__dict__ for r in rows], "stages": stages.records, "report": str(out / "report.md"),
            "results_csv": str(out / "results.csv"), **report}

"""The comparison's report: ``results.csv``, ``report.md``, ``results.png`` and ``loss_curves.png``
from the rows and their results (it reads finished outputs, it runs nothing)."""

from __future__ import annotations

import csv
import math
from pathlib import Path

from distill.schema import DistillConfig
from seed_core.checkpoint_files import safe_load
from seed_core.config import resolve_path
from seed_core.run_info import code_version, hardware_text

from ...classification import report as cls_report
from .plan import TEACHER_CACHE_DIR, ComparePlan
from .registration import registration_lines
from .schema import CompareConfig, Row
from .table import differences, differences_markdown, results_table, write_results_csv

MAX_LISTED_UNITS = 12  # the report lists per-unit values up to this many (few-shot has hundreds of episodes)


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


def plot_differences(columns: list[str], diffs: list[dict], primary: list[str], path: Path) -> bool:
    """A forest plot: every tested difference's mean with its 95% confidence interval over members,
    against zero; the primary comparisons first (filled), then the exploratory ones. Differences
    without a method-level test (one member) are left out. False when there is nothing to draw."""
    items = []
    for entry in diffs:
        for column in columns:
            diff = entry.get(f"{column} diff")
            if diff is not None and diff.tested:
                name = f"{entry['row'].replace(' - ', ' − ')} {column}"
                items.append((f"{entry['row']} {column}" not in primary, name, diff))
    if not items:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    items.sort(key=lambda item: item[0])  # stable: primary first, then the table's order
    fig, ax = plt.subplots(figsize=(7.5, 0.32 * len(items) + 1.2))
    for y, (exploratory, name, diff) in enumerate(items):
        low, high = diff.ci()
        colour = "C7" if exploratory else "C3"
        ax.plot([low, high], [y, y], color=colour, lw=1.5)
        ax.plot(diff.mean, y, "o", color=colour, mfc="white" if exploratory else colour)
    ax.axvline(0.0, color="black", lw=0.8)
    ax.set_yticks(range(len(items)), [("" if e else "primary: ") + n for e, n, _ in items], fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("difference (points), 95% CI over members")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True


def _budget_lines(cfg: CompareConfig, configs: dict[tuple[str, int], DistillConfig]) -> list[str]:
    """Teacher, data and budget of the distillation, from the (shared) SEED config, and what
    the finished students of ``configs`` (by strategy and member) record (steps, teacher-cache use)."""
    if not cfg.distill.strategies:
        return []
    from distill.trainer import STUDENT_NAME

    dcfg = configs[(cfg.distill.strategies[0], 0)]
    steps, caches = [], []
    for (strategy, member), member_cfg in configs.items():
        student = Path(member_cfg.train.output_dir) / STUDENT_NAME
        tag = Row(strategy, "", member=member).tag
        if not student.is_file():  # its results outlived it (run.results_outlive_student) or not run yet
            steps.append(f"{tag}: student not kept")
        else:
            meta = safe_load(student).get("meta", {})
            steps.append(f"{tag}: {meta.get('step')}/{meta.get('total_steps')} steps")
            cache = meta.get("teacher_cache")
            if cache:
                caches.append(
                    f"{tag} {cache['mode']} ({cache['read_steps']} steps read, "
                    f"{cache['computed_steps']} run by the teacher)"
                )
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
        lines.append(
            f"- **Teacher cache** (`{TEACHER_CACHE_DIR}/`, bit-identical to a live teacher): {'; '.join(caches)}"
        )
    return lines


def _members_note(members: int | None) -> str:
    """How many distillations per strategy a fine-tuning stage took (``<stage>.members``)."""
    return "" if members is None else f", of each strategy the first {members} distillation(s) only"


def _distill_data(dcfg: DistillConfig) -> str:
    """The distillation set by name and size (the folder sources are not listed: they can be ImageNet)."""
    names = {
        "stamps": "the Tux Paint stamps outside the evaluation categories (distill/stamps.py)",
        "demo": "crops of the scikit-image / scikit-learn photos",
        "filelist": f"`{dcfg.data.file_list}`",
    }
    if dcfg.data.source == "imagefolder":
        return f"`{dcfg.data.root}`"
    from distill.data import build_source_dataset

    kwargs = {"length": dcfg.data.demo_length} if dcfg.data.source == "demo" else {}
    size = len(
        build_source_dataset(
            dcfg.data.source, resolve_path(dcfg.data.root), resolve_path(dcfg.data.file_list), **kwargs
        )
    )
    unit = "crops a virtual epoch" if dcfg.data.source == "demo" else "images"
    return f"{names[dcfg.data.source]}, {size} {unit}"


def write_report(
    plan: ComparePlan,
    cls_results: list[dict],
    det: dict[tuple[str, int], dict],
    stages: list[dict],
    wall_seconds: float,
    seg: dict[tuple[str, int], dict] | None = None,
    command: str | None = None,
) -> dict:
    """``results.csv``, ``report.md`` and the plots of the plan's rows from their results (``det``,
    ``seg``: the fine-tuning summaries by (row name, member)); every setting it names is the plan's."""
    cfg, rows = plan.cfg, plan.rows
    out = Path(cfg.output_dir)
    names = list(dict.fromkeys(r.name for r in rows))
    weights = {name: " ".join(r.weights for r in rows if r.name == name) for name in names}
    columns, table = results_table(names, weights, cls_results, [det, seg or {}])
    diffs = differences(columns, table)
    write_results_csv(columns, table + diffs, out / "results.csv")
    plot_results(columns, table, out / "results.png")
    has_forest = plot_differences(columns, diffs, cfg.primary, out / "differences.png")
    configs = plan.distill
    runs = {s: Path(configs[(s, 0)].train.output_dir) / "metrics.csv" for s in cfg.distill.strategies}
    has_curves = bool(runs) and plot_loss_curves(runs, out / "loss_curves.png")

    lines = [f"# {cfg.title}", ""]
    if cfg.note:
        lines += [f"> {cfg.note.strip()}", ""]
    lines += registration_lines(cfg)
    lines += _budget_lines(cfg, configs)
    if cfg.cls.enabled:
        ccfg = plan.cls_protocol[0]  # the protocol every row and dataset shares
        fewshot = getattr(ccfg, "fewshot", None)
        episodes = (
            f", few-shot: {fewshot.n_way}-way prototype classifier on {fewshot.episodes} episodes, the same "
            f"episodes for every row"
            if fewshot is not None and fewshot.enabled
            else ""
        )
        lines.append(
            f"- **Classification transfer**: `{cfg.cls.config}` (frozen features {ccfg.features.resize} px, "
            f"logistic regression over {ccfg.linear.num_c} C values chosen on validation, kNN k={ccfg.knn.k}"
            f"{episodes}); scores in % on the test split"
        )
    if cfg.det.enabled:
        lines.append(
            f"- **Detection transfer**: `{cfg.det.config}` fine-tuned from every row the engine builds "
            f"with one "
            f"schedule (`{' '.join(cfg.det.all_opts()) or 'as configured'}`), {cfg.det.seeds} seed(s)"
            f"{_members_note(cfg.det.members)}; COCO-style AP (%)"
        )
    if cfg.seg.enabled:
        lines.append(
            f"- **Segmentation transfer**: `{cfg.seg.config}` fine-tuned from every ResNet row with one "
            f"schedule (`{' '.join(cfg.seg.opts) or 'as configured'}`), {cfg.seg.seeds} seed(s)"
            f"{_members_note(cfg.seg.members)}; mIoU (%)"
        )
    lines.append(
        f"- **Units**: {cfg.distill.seeds} independent distillation(s) per strategy (and as many random-init "
        f"seeds) x the fine-tuning seeds; each cell is the mean ± std over its units"
    )
    code = code_version()
    commit = f"{(code.get('git_commit') or 'unknown')[:10]}{' (uncommitted changes)' if code.get('git_dirty') else ''}"
    in_jobs = sum(s["status"] == "ran as jobs" for s in stages)
    jobs = f", {in_jobs} run as cluster jobs (in parallel: their seconds add up)" if in_jobs else ""
    lines += [
        f"- **Compute time** of the stages: {sum(s['seconds'] for s in stages) / 60:.1f} min "
        f"(this invocation: {wall_seconds / 60:.1f} min wall, "
        f"{sum(s['status'] == 'skipped' for s in stages)} of {len(stages)} stages already done{jobs}); "
        f"code {code.get('package_version', '')} at commit `{commit}`",
        f"- **Hardware** (of this invocation): {hardware_text()}",
    ]
    if command:
        lines.append(f"- **Command**: `{command}`")
    lines.append("")

    header = ["init"] + [c.replace(" ", " (", 1) + ")" if " " in c else c for c in columns]
    lines += ["## Results", "", "| " + " | ".join(header) + " |", "|---" * len(header) + "|"]
    for entry in table:
        cells = [
            cls_report.fmt_score(entry.get(c), entry.get(f"{c} std") if len(entry.get(f"{c} values", [])) > 1 else None)
            for c in columns
        ]
        lines.append(f"| {entry['row']} | " + " | ".join(cells) + " |")
    lines.append("")
    if diffs:
        lines += ["## Differences", ""] + differences_markdown(columns, diffs, cfg.primary)
    per_unit = [
        f"{e['row']} {c}: {', '.join(f'{v:.2f}' for v in e[f'{c} values'])}"
        for e in table
        for c in columns
        if 1 < len(e.get(f"{c} values", [])) <= MAX_LISTED_UNITS
    ]
    if per_unit:
        lines += [
            "Per-unit values (member by member, then seed by seed; few-shot episodes in `results.csv`): "
            + "; ".join(per_unit),
            "",
        ]
    lines += ["![results](results.png)", ""]
    if has_forest:
        lines += [
            "Each tested difference with its 95% confidence interval over members (primary comparisons first, "
            "filled; the bars above show the spread over units, which hides the differences):",
            "",
            "![differences](differences.png)",
            "",
        ]
    if has_curves:
        lines += ["## Distillation loss", "", "![loss curves](loss_curves.png)", ""]
    if cls_results:
        lines += [
            "## Classification transfer (details)",
            "",
            cls_report.markdown_table(cls_results, "linear"),
            "",
            cls_report.markdown_table(cls_results, "knn"),
            "",
            "![validation curves](cls/val_curves.png)",
            "",
        ]
    lines += ["## Stages", "", "| stage | row | this invocation | seconds (when it ran) |", "|---|---|---|---|"]
    lines += [f"| {s['stage']} | {s['row']} | {s['status']} | {s['seconds']:.0f} |" for s in stages]
    (out / "report.md").write_text("\n".join(lines) + "\n")
    return {"columns": columns, "table": _plain(table), "differences": _plain(diffs)}


def _plain(entries: list[dict]) -> list[dict]:
    """The table without its in-memory keys (unit maps, Difference objects), as JSON-able dicts."""
    return [{k: v for k, v in e.items() if not k.endswith((" units", " diff"))} for e in entries]

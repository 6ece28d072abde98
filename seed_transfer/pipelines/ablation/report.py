"""Tables, CSVs and plots of an ablation (``seed_transfer.pipelines.ablation.run``), in the shape of SEED's
Tables 3-5 (rows = settings of one axis, columns = evaluation metrics) and Figure 5
(metric against tau_T / queue size, log-x).

``mode: axes`` writes ``<axis>.md``, ``<axis>.csv`` and ``<axis>.png`` per axis;
``mode: product`` writes ``grid.md`` / ``grid.csv`` (one row per point, a column per axis)
and ``<axis>.png`` per axis (one line per setting of the other axes). ``report.md`` indexes
them with the budget, the evaluations and the compute time.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

from seed_core.checkpoint_files import safe_load
from seed_core.run_info import code_version

from ...classification.report import fmt_score
from .schema import AblationConfig, Grid, slug


def metric_columns(records: list[dict]) -> list[str]:
    """Every metric any point reported, in first-seen order."""
    return list(dict.fromkeys(m for r in records for m in r["metrics"]))


def format_value(value) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def is_log_scale(values: list) -> bool:
    """Log-x for positive numeric axes spanning a decade or more (tau_T, queue size)."""
    if len(values) < 2 or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        return False
    return all(math.isfinite(v) and v > 0 for v in values) and max(values) / min(values) >= 10


def _is_numeric(values: list) -> bool:
    return all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)


def axis_rows(grid: Grid, records: list[dict], axis: str) -> list[dict]:
    """One row per (axis value, point): value, point, status, whether it is the base, metrics."""
    by_point = {r["point"]: r for r in records}
    rows = []
    for value, name in grid.members[axis]:
        record = by_point.get(name, {"settings": {}, "status": "not run", "metrics": {}})
        rows.append(
            {
                "value": value,
                "point": name,
                "status": record["status"],
                "settings": record["settings"],
                "base": value == grid.base_values.get(axis),
                **record["metrics"],
            }
        )
    return rows


def _status(row: dict) -> str:
    return "" if row["status"] == "done" else f" ({row['status'].split(':')[0]})"


def axis_markdown(axis: str, rows: list[dict], columns: list[str]) -> str:
    lines = [f"| {axis} | " + " | ".join(columns) + " | point |", "|---" * (len(columns) + 2) + "|"]
    for row in rows:
        label = format_value(row["value"]) + (" (base)" if row["base"] else "") + _status(row)
        lines.append(f"| {label} | " + " | ".join(fmt_score(row.get(c)) for c in columns) + f" | `{row['point']}` |")
    return "\n".join(lines)


def grid_markdown(axes: list[str], records: list[dict], columns: list[str]) -> str:
    lines = ["| " + " | ".join(axes + columns) + " | point |", "|---" * (len(axes) + len(columns) + 1) + "|"]
    for r in records:
        cells = [format_value(r["settings"][a]) for a in axes] + [fmt_score(r["metrics"].get(c)) for c in columns]
        lines.append("| " + " | ".join(cells) + f" | `{r['point']}`{_status(r)} |")
    return "\n".join(lines)


def write_csv(path: Path, header: list[str], rows: list[list]) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)


def plot_axis(axis: str, rows: list[dict], columns: list[str], path: Path, others: list[str]) -> None:
    """Metric against the axis value, one panel per metric; one line per setting of ``others``
    (the other axes of a product grid). Numeric axes: log-x when they span a decade; a dotted
    line marks the base value. Categorical axes: bars (one line per setting in a product grid)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    values = list(dict.fromkeys(json.dumps(r["value"]) for r in rows))
    values = [json.loads(v) for v in values]
    numeric, log_x = _is_numeric(values), is_log_scale(values)
    x_of = (lambda v: v) if numeric else (lambda v: values.index(v))
    groups: dict[str, list[dict]] = {}
    for row in rows:
        label = ", ".join(f"{a}={format_value(row['settings'].get(a))}" for a in others)
        groups.setdefault(label, []).append(row)

    panels = max(1, len(columns))
    fig, axes = plt.subplots(1, panels, figsize=(4.2 * panels, 3.4), squeeze=False)
    for ax, column in zip(axes[0], columns):
        for label, group in groups.items():
            xs = [x_of(r["value"]) for r in group]
            ys = [r.get(column) if r.get(column) is not None else math.nan for r in group]
            if numeric or others:
                ax.plot(xs, ys, marker="o", label=label or None)
            else:
                bars = ax.bar(xs, ys, color=[f"C{i}" for i in range(len(xs))])
                ax.bar_label(bars, fmt="%.2f", fontsize=8)  # bars start at 0: the numbers show the differences
        base = next((r["value"] for r in rows if r["base"]), None)
        if numeric and base is not None:
            ax.axvline(base, color="grey", linestyle=":", linewidth=1)
        if log_x:
            ax.set_xscale("log")
        if not numeric:
            ax.set_xticks(range(len(values)), [format_value(v) for v in values], rotation=20, ha="right", fontsize=8)
        ax.set(xlabel=axis, ylabel="%", title=column)
        if others and len(groups) > 1:
            ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _budget_lines(cfg: AblationConfig, grid: Grid, records: list[dict]) -> list[str]:
    base = grid.base
    steps = []
    for point in grid.points:
        student = Path(point.distill.train.output_dir) / "student.pth"
        if student.is_file():
            meta = safe_load(student).get("meta", {})
            steps.append(f"{meta.get('step')}/{meta.get('total_steps')}")
    teacher = (
        "no teacher (plain MoCo)"
        if base.distill.strategy == "moco"
        else f"`{base.teacher.arch}` from `{base.teacher.weights}` (layout {base.teacher.layout})"
    )
    data = base.data.root or base.data.file_list or "the demo's scikit-image photos"
    budget = f"{base.optim.epochs} epochs, batch {base.optim.batch_size}, base lr {base.optim.base_lr}"
    if base.train.max_steps:
        budget += f", stopped at step {base.train.max_steps}"
    lines = [
        f"- **Base config**: `{cfg.base}` + `{' '.join(cfg.overrides) or '(no overrides)'}`; every point changes "
        f"only its axis settings ({cfg.mode} mode, {len(grid.points)} points).",
        f"- **Base point**: student `{base.student.arch}`, teacher {teacher}, strategy `{base.distill.strategy}`, "
        f"tau_T {base.distill.tau_teacher:g}, tau_S {base.distill.tau_student:g}, queue {base.distill.queue_size}.",
        f"- **Distillation**: {base.data.source} data ({data}), {base.data.image_size} px crops; {budget}"
        + (f" (steps run: {', '.join(dict.fromkeys(steps))})" if steps else "")
        + ".",
    ]
    presets = [f"`{name}`: `{' '.join(o)}`" for name, o in cfg.teachers.items() if name in grid.axes.get("teacher", [])]
    if presets:
        lines.append("- **Teacher presets**: " + "; ".join(presets))
    if cfg.eval.knn.enabled:
        lines.append(
            f"- **kNN**: `{cfg.eval.knn.config}` + `{' '.join(cfg.eval.knn.overrides) or '(no overrides)'}` "
            f"(train = bank, val = queries; top-1/top-5 %)"
        )
    if cfg.eval.cls.enabled:
        lines.append(
            f"- **Classification transfer**: `{cfg.eval.cls.config}` + "
            f"`{' '.join(cfg.eval.cls.overrides) or '(no overrides)'}` on "
            f"{', '.join(cfg.eval.cls.datasets) or 'the config dataset'} "
            f"(linear and kNN, % on the test split)"
        )
    failed = [r["point"] for r in records if r["status"] != "done"]
    if failed:
        lines.append(f"- **Failed points** (diverged; see the log): {', '.join(failed)}")
    return lines


def teacher_cache_lines(records: list[dict]) -> list[str]:
    """A table of what each point did with the shared teacher cache; none when no point used one."""
    if not any(r.get("teacher_cache") for r in records):
        return []
    lines = [
        "## Teacher cache",
        "",
        "Points with the same teacher, data and seed share one cache of the teacher's embeddings of every view "
        "(`teacher.cache_dir`): a point that read every step never ran the teacher; the students are "
        "bit-identical to live-teacher runs.",
        "",
        "| point | teacher cache | steps read | steps run by the teacher |",
        "|---|---|---|---|",
    ]
    for r in records:
        cache = r.get("teacher_cache")
        if cache is None:
            lines.append(f"| `{r['point']}` | not used | - | - |")
        else:
            lines.append(
                f"| `{r['point']}` | {cache['mode']} (`{Path(cache['folder']).name}`) | "
                f"{cache['read_steps']} | {cache['computed_steps']} |"
            )
    return lines + [""]


def write_reports(
    cfg: AblationConfig, grid: Grid, records: list[dict], stages: list[dict], wall_seconds: float
) -> dict:
    """Write the per-axis (or grid) tables, CSVs, plots and report.md; returns their paths and rows."""
    out = Path(cfg.output_dir)
    columns = metric_columns(records)
    axes = list(grid.axes)
    lines = [f"# {cfg.title}", ""]
    if cfg.note:
        lines += [f"> {cfg.note.strip()}", ""]
    lines += _budget_lines(cfg, grid, records)
    code = code_version()
    commit = f"{(code.get('git_commit') or 'unknown')[:10]}{' (uncommitted changes)' if code.get('git_dirty') else ''}"
    lines += [
        f"- **Compute time** of the stages: {sum(s['seconds'] for s in stages) / 60:.1f} min (this invocation: "
        f"{wall_seconds / 60:.1f} min wall, {sum(s['status'] == 'skipped' for s in stages)} of {len(stages)} "
        f"stages already done); code {code.get('package_version', '')} at commit `{commit}`",
        "",
    ]

    tables, files = {}, {}
    if cfg.mode == "product":
        header = axes + ["point", "status"] + columns
        write_csv(
            out / "grid.csv",
            header,
            [
                [r["settings"][a] for a in axes]
                + [r["point"], r["status"]]
                + [r["metrics"].get(c, "") for c in columns]
                for r in records
            ],
        )
        (out / "grid.md").write_text(grid_markdown(axes, records, columns) + "\n")
        lines += ["## Full grid", "", grid_markdown(axes, records, columns), "", "CSV: [grid.csv](grid.csv)", ""]
        files["grid"] = {"csv": str(out / "grid.csv"), "md": str(out / "grid.md")}
    for axis in axes:
        rows = axis_rows(grid, records, axis)
        tables[axis] = rows
        stem = slug(axis)
        others = [a for a in axes if a != axis] if cfg.mode == "product" else []
        plot_axis(axis, rows, columns, out / f"{stem}.png", others)
        files[axis] = {"png": str(out / f"{stem}.png")}
        lines += [f"## {axis}", ""]
        if cfg.mode == "axes":
            table = axis_markdown(axis, rows, columns)
            (out / f"{stem}.md").write_text(table + "\n")
            write_csv(
                out / f"{stem}.csv",
                [axis, "point", "status", "base"] + columns,
                [[r["value"], r["point"], r["status"], r["base"]] + [r.get(c, "") for c in columns] for r in rows],
            )
            files[axis].update(md=str(out / f"{stem}.md"), csv=str(out / f"{stem}.csv"))
            lines += [table, "", f"CSV: [{stem}.csv]({stem}.csv)", ""]
        lines += [f"![{axis}]({stem}.png)", ""]
    lines += teacher_cache_lines(records)
    lines += ["## Stages", "", "| stage | point | this invocation | seconds (when it ran) |", "|---|---|---|---|"]
    lines += [f"| {s['stage']} | {s['row']} | {s['status']} | {s['seconds']:.0f} |" for s in stages]
    (out / "report.md").write_text("\n".join(lines) + "\n")
    return {"report": str(out / "report.md"), "columns": columns, "tables": tables, "files": files}

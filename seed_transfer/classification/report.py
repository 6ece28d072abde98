"""Gather per-run JSON results into tables (models as rows, datasets as columns) and plots."""

import csv
import json
import math
from pathlib import Path


def gather(paths: list[str | Path]) -> list[dict]:
    """Results from JSON files and from every ``*.json`` under given folders."""
    results = []
    for path in map(Path, paths):
        files = sorted(path.rglob("*.json")) if path.is_dir() else [path]
        for file in files:
            blob = json.loads(file.read_text())
            if isinstance(blob, dict) and "model" in blob and "dataset" in blob:
                results.append(blob)
    return results


def table(results: list[dict], task: str = "linear") -> tuple[list[str], list[str], dict]:
    """(models, datasets, {(model, dataset): score}) for ``task`` in {"linear", "knn"}."""
    models = list(dict.fromkeys(r["model"] for r in results))
    datasets = list(dict.fromkeys(r["dataset"] for r in results))
    cells = {(r["model"], r["dataset"]): (r.get(task) or {}).get("score") for r in results}
    return models, datasets, cells


def fmt_score(value, std=None) -> str:
    """A score for a markdown table: 2 decimals, "-" when missing or NaN, "mean ± std" with ``std``."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.2f}" if std is None else f"{value:.2f} ± {std:.2f}"


def markdown_table(results: list[dict], task: str = "linear") -> str:
    models, datasets, cells = table(results, task)
    metrics = {r["dataset"]: r["metric"] for r in results}
    lines = [
        f"| {task} | " + " | ".join(f"{d} ({metrics[d]})" for d in datasets) + " |",
        "|---|" + "---|" * len(datasets),
    ]
    lines += [f"| {m} | " + " | ".join(fmt_score(cells.get((m, d))) for d in datasets) + " |" for m in models]
    return "\n".join(lines)


def write_csv(results: list[dict], path: str | Path) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["model", "dataset", "metric", "linear", "best_c", "knn"])
        for r in results:
            writer.writerow(
                [
                    r["model"],
                    r["dataset"],
                    r["metric"],
                    (r.get("linear") or {}).get("score"),
                    (r.get("linear") or {}).get("best_c"),
                    (r.get("knn") or {}).get("score"),
                ]
            )


def plot_val_curves(results: list[dict], path: str | Path) -> None:
    """Validation score against C, one panel per dataset, one line per model."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    datasets = list(dict.fromkeys(r["dataset"] for r in results if r.get("linear")))
    fig, axes = plt.subplots(1, max(1, len(datasets)), figsize=(5 * max(1, len(datasets)), 4), squeeze=False)
    for ax, dataset in zip(axes[0], datasets):
        for r in (r for r in results if r["dataset"] == dataset and r.get("linear")):
            cs, scores = zip(*r["linear"]["val_curve"])
            ax.plot(cs, scores, marker=".", label=r["model"])
            ax.axvline(r["linear"]["best_c"], color=ax.lines[-1].get_color(), linestyle=":", linewidth=1)
        ax.set(xscale="log", xlabel="C (inverse regularisation)", ylabel=f"validation {r['metric']}", title=dataset)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)

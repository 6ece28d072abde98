"""The comparison's numbers: one entry per row (mean, std, standard error and per-unit values of
every column, over its members and fine-tuning seeds) and the paired differences between rows.

Columns are ``linear <dataset>``, ``knn <dataset>``, ``<k>shot <dataset>`` (few-shot episodes)
and the detection / segmentation metrics. Every value is measured on a unit ``(member, j)``
(see :mod:`seed_transfer.pipelines.differences`): ``j`` is the fine-tuning seed for detection and
segmentation, the episode for few-shot (every row gets the same episodes, so differences pair
episode by episode), and 0 for linear and kNN. A row's ``<column> values`` lists them in unit
order (few-shot: the per-episode accuracies, so ``results.csv`` stays readable only per column).
"""

from __future__ import annotations

import csv
import math
import statistics
from pathlib import Path

from ..differences import Difference, Unit, paired_difference, t_threshold
from ...finetune import mean_std

DET_METRICS = ("AP", "AP50", "AP75")
SEG_METRICS = ("mIoU",)
FINETUNE_METRICS = DET_METRICS + SEG_METRICS  # measured over fine-tuning seeds
BASELINE_ROWS = ("random", "moco")  # every other student row is compared with these


def cls_scores(result: dict) -> dict[str, float | None]:
    """Column (without the dataset) -> score of one classification transfer result."""
    scores = {"linear": (result.get("linear") or {}).get("score"), "knn": (result.get("knn") or {}).get("score")}
    fewshot = {k: v for k, v in (result.get("fewshot") or {}).items() if isinstance(v, dict)}  # not its "note"
    for key, shot in sorted(fewshot.items(), key=lambda kv: _shots(kv[0])):
        scores[key] = shot.get("score")
    return scores


def _shots(key: str) -> int:
    digits = "".join(ch for ch in key if ch.isdigit())
    return int(digits) if digits else 0


def row_units(
    name: str, cls_results: list[dict], finetuned: list[dict[tuple[str, int], dict]]
) -> dict[str, dict[Unit, float]]:
    """Column -> {unit: value} of the row ``name``: classification results (``row`` / ``member`` keys
    as ``run_cls`` adds them) and the fine-tuning stages' summaries, each keyed by (row name, member)."""
    units: dict[str, dict[Unit, float]] = {}
    for result in cls_results:
        if result.get("row", result["model"]) != name:
            continue
        member = result.get("member", 0)
        for column, value in cls_scores(result).items():
            episodes = (result.get("fewshot") or {}).get(column, {}).get("per_episode")
            if episodes:  # few-shot: one unit per episode, the same episodes for every row
                # every member's episodes: a second member must add to the first's, not replace them
                column_units = units.setdefault(f"{column} {result['dataset']}", {})
                column_units.update({(member, e): v for e, v in enumerate(episodes)})
            elif value is not None:
                units.setdefault(f"{column} {result['dataset']}", {})[(member, 0)] = value
    for stage in finetuned:
        for (row, member), summary in stage.items():
            if row != name:
                continue
            metrics = {**summary.get("summary", {}).get("bbox", {}), **summary.get("summary", {})}
            for metric in FINETUNE_METRICS:
                if isinstance(metrics.get(metric), dict):
                    for seed, value in enumerate(metrics[metric]["values"]):  # null (strict JSON) -> NaN
                        units.setdefault(metric, {})[(member, seed)] = math.nan if value is None else value
    return units


def _summary(values: list[float]) -> tuple[float, float, float]:
    """(mean, sample std, standard error) of the unit values; NaN when one is NaN (``seeds.mean_std``)."""
    stats = mean_std(values)
    se = stats["std"] / math.sqrt(len(values)) if len(values) > 1 else math.nan
    return stats["mean"], stats["std"], se


def results_table(
    row_names: list[str], weights: dict[str, str], cls_results: list[dict], finetuned: list[dict[tuple[str, int], dict]]
) -> tuple[list[str], list[dict]]:
    """(columns, one entry per row): ``<c>`` (mean over units), ``<c> std``, ``<c> se``,
    ``<c> values`` and ``<c> units`` ({unit: value}, for the differences) for every column."""
    datasets = list(dict.fromkeys(r["dataset"] for r in cls_results))
    columns = []
    for dataset in datasets:
        keys = dict.fromkeys(
            k for r in cls_results if r["dataset"] == dataset for k, v in cls_scores(r).items() if v is not None
        )
        columns += [f"{key} {dataset}" for key in keys]
    table = []
    for name in row_names:
        entry = {"row": name, "kind": "row", "weights": weights[name]}
        for r in cls_results:
            if r.get("row", r["model"]) == name:
                entry[f"metric {r['dataset']}"] = r["metric"]
        for column, units in row_units(name, cls_results, finetuned).items():
            values = [units[u] for u in sorted(units)]
            entry[column], entry[f"{column} std"], entry[f"{column} se"] = _summary(values)
            entry[f"{column} values"], entry[f"{column} units"] = values, units
        table.append(entry)
    found = {c for e in table for c in e}
    columns += [m for m in FINETUNE_METRICS if m in found]
    return columns, table


def comparison_pairs(table: list[dict]) -> list[tuple[str, str]]:
    """(a, b) row pairs to difference: every student row against random init, then every
    distilled row against plain MoCo v2 (the self-supervised baseline)."""
    names = [e["row"] for e in table]
    students = [n for n in names if n not in BASELINE_ROWS and n not in ("pixels",) and not n.startswith("teacher")]
    pairs = [(a, "random") for a in [*students, "moco"] if a in names and "random" in names]
    pairs += [(a, "moco") for a in students if "moco" in names]
    return pairs


def differences(columns: list[str], table: list[dict]) -> list[dict]:
    """One entry per compared pair: ``<c>`` the mean paired difference, ``<c> se`` its standard
    error, ``<c> std`` the std of the paired differences, ``<c> values`` the differences and
    ``<c> diff`` the :class:`Difference`, for every column both rows measured."""
    by_row = {e["row"]: e for e in table}
    out = []
    for a, b in comparison_pairs(table):
        entry = {"row": f"{a} - {b}", "kind": "difference", "weights": ""}
        for column in columns:
            ua, ub = by_row[a].get(f"{column} units"), by_row[b].get(f"{column} units")
            diff = paired_difference(ua, ub) if ua and ub else None
            if diff is None:
                continue
            entry[column], entry[f"{column} se"], entry[f"{column} diff"] = diff.mean, diff.se, diff
            entry[f"{column} std"] = statistics.stdev(diff.values) if len(diff.values) > 1 else 0.0
            entry[f"{column} values"] = diff.values
        out.append(entry)
    return out


def write_results_csv(columns: list[str], entries: list[dict], path: Path) -> None:
    """Rows (``kind`` row) then differences (``kind`` difference), each column as mean, std,
    standard error and the per-unit values (space-separated)."""
    header = ["row", "kind", "weights"]
    for c in columns:
        header += [c, f"{c} std", f"{c} se", f"{c} values"]
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        for entry in entries:
            writer.writerow(
                [_csv_cell(entry.get(h)) if h not in ("row", "kind", "weights") else entry.get(h, "") for h in header]
            )


def _csv_cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return " ".join(f"{v:.4f}" for v in value)
    if isinstance(value, float):
        return "" if math.isnan(value) else f"{value:.4f}"
    return str(value)


def fmt_difference(diff: Difference | None) -> str:
    """``+2.31 ± 0.80`` (bold when :meth:`~..differences.Difference.significant`), ``+2.31 (error not
    measured)`` (one sample), ``+2.31 (no spread over 2 samples)`` (all equal), or ``-``."""
    if diff is None:
        return "-"
    if math.isnan(diff.se):
        return f"{diff.mean:+.2f} (error not measured)"
    if diff.se == 0:
        return f"{diff.mean:+.2f} (no spread over {diff.samples} samples)"
    text = f"{diff.mean:+.2f} ± {diff.se:.2f}"
    return f"**{text}**" if diff.significant() else text


def differences_markdown(columns: list[str], diffs: list[dict]) -> list[str]:
    """The paired-differences table of the report, with how its errors were estimated."""
    if not diffs:
        return []
    header = ["difference"] + [c.replace(" ", " (", 1) + ")" if " " in c else c for c in columns]
    lines = ["| " + " | ".join(header) + " |", "|---" * len(header) + "|"]
    for entry in diffs:
        lines.append(
            f"| {entry['row'].replace(' - ', ' − ')} | "
            + " | ".join(fmt_difference(entry.get(f"{c} diff")) for c in columns)
            + " |"
        )
    members = max((entry[k].members for entry in diffs for k in entry if k.endswith(" diff")), default=0)
    caveat = (
        ""
        if members > 1
        else "With one distillation per strategy these errors count the fine-tuning seeds "
        "and few-shot episodes only, not the distillation's own seed-to-seed noise (`distill.seeds: 2` or more "
        "measures it). "
    )
    return (
        lines
        + [
            "",
            "Mean paired difference ± its standard error (the larger of the estimates over paired "
            "units and over distillation seeds; see `seed_transfer/pipelines/differences.py`). "
            + caveat
            + "**Bold**: beyond a two-sided 95% Student-t test over the samples the error was estimated "
            f"over ({t_threshold(2):.2f} standard errors for 2 samples, {t_threshold(3):.2f} for 3, "
            f"{t_threshold(6):.2f} for 6, about 2 for hundreds); anything else is within noise.",
            "",
        ]
        + samples_needed_markdown(columns, diffs)
    )


def samples_needed_markdown(columns: list[str], diffs: list[dict]) -> list[str]:
    """For each difference within noise: the samples at which its measured mean and spread would
    pass the test (:meth:`~..differences.Difference.samples_needed`)."""
    kinds = {"members": "distillation seeds per strategy", "units": "paired units"}
    items = []
    for entry in diffs:
        for column in columns:
            diff = entry.get(f"{column} diff")
            needed = diff.samples_needed() if diff is not None and not diff.significant() else None
            if needed is not None:
                row = entry["row"].replace(" - ", " − ")
                items.append(f"{row} {column}: {needed} {kinds[diff.se_from]} (has {diff.samples})")
    if not items:
        return []
    return [
        "Within noise, and how many samples would make the measured mean pass that test if "
        "the mean and the spread stayed as measured (an extrapolation from this run, not a measurement): "
        + "; ".join(items),
        "",
    ]

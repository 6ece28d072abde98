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

from ...finetune import mean_std
from ..differences import ALPHA, MAX_PLANNED_MEMBERS, POWER, Difference, Unit, holm, member_difference
from .schema import parse_comparison

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
    students = [n for n in names if n not in BASELINE_ROWS and replicated(n)]
    pairs = [(a, "random") for a in [*students, "moco"] if a in names and "random" in names]
    pairs += [(a, "moco") for a in students if "moco" in names]
    return pairs


def replicated(row: str) -> bool:
    """A row whose members are independent replicates (students, random init); raw pixels and a given
    checkpoint (the teacher rows) are fixed: no replicate noise."""
    return row != "pixels" and not row.startswith("teacher")


def differences(columns: list[str], table: list[dict]) -> list[dict]:
    """One entry per compared pair: ``<c>`` the mean difference, ``<c> se`` its member-level standard
    error (NaN without a method-level test), ``<c> std`` the std of the paired unit differences,
    ``<c> values`` those differences and ``<c> diff`` the :class:`Difference`, for every column both
    rows measured."""
    by_row = {e["row"]: e for e in table}
    out = []
    for a, b in comparison_pairs(table):
        entry = {"row": f"{a} - {b}", "kind": "difference", "weights": ""}
        for column in columns:
            ua, ub = by_row[a].get(f"{column} units"), by_row[b].get(f"{column} units")
            diff = member_difference(ua, ub, not replicated(a), not replicated(b)) if ua and ub else None
            if diff is None:
                continue
            entry[column], entry[f"{column} se"], entry[f"{column} diff"] = diff.mean, diff.se, diff
            entry[f"{column} std"] = statistics.stdev(diff.values) if len(diff.values) > 1 else 0.0
            entry[f"{column} values"] = diff.values
        out.append(entry)
    return out


def primary_tests(diffs: list[dict], questions: list[str]) -> list[dict]:
    """The preset's primary comparisons (``"seed - moco 5shot stamps"``), each with its
    :class:`Difference` (None: not measured) and its p-value Holm-adjusted over the whole set."""
    by_pair = {entry["row"]: entry for entry in diffs}
    tests = []
    for question in questions:
        a, b, column = parse_comparison(question)
        diff = by_pair.get(f"{a} - {b}", {}).get(f"{column} diff")
        tests.append({"question": question, "column": column, "diff": diff})
    adjusted = holm([t["diff"].p if t["diff"] is not None else math.nan for t in tests])
    for test, p in zip(tests, adjusted):
        test["p_holm"] = p
    return tests


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


def fmt_difference(diff: Difference | None, p: float | None = None) -> str:
    """``+2.31 ± 0.80`` (bold when :meth:`~..differences.Difference.significant` at ``p``, default its
    own), ``+2.31 (1 member; ± 0.80 within)`` (no method-level test: descriptive only), ``+2.31 (no
    spread over 4 members)``, or ``-``."""
    if diff is None:
        return "-"
    if not diff.tested:
        if diff.design in ("one member", "fixed rows"):
            within = "" if math.isnan(diff.nested_se) else f"; ± {diff.nested_se:.2f} within"
            return f"{diff.mean:+.2f} ({'1 member' if diff.design == 'one member' else 'fixed rows'}{within})"
        return f"{diff.mean:+.2f} (no spread over {max(diff.members)} members)"
    text = f"{diff.mean:+.2f} ± {diff.se:.2f}"
    return f"**{text}**" if diff.significant(p) else text


def _fmt_p(p: float) -> str:
    return "-" if math.isnan(p) else ("< 0.001" if p < 0.001 else f"{p:.3f}")


def _members(diff: Difference) -> str:
    return " vs ".join(str(n) if n else "fixed" for n in diff.members)


def primary_markdown(tests: list[dict]) -> list[str]:
    """The primary comparisons' table: members, mean, 95% CI, p and Holm-adjusted p."""
    if not tests:
        return [
            "No primary comparison was declared before the run (`primary:` in the preset): every "
            "difference below is exploratory.",
            "",
        ]
    lines = [
        "| primary comparison (fixed before the run) | members | mean | 95% CI | p | p (Holm) | verdict |",
        "|---|---|---|---|---|---|---|",
    ]
    for test in tests:
        diff, name = test["diff"], test["question"].replace(" - ", " − ", 1)
        if diff is None:
            lines.append(f"| {name} | - | - | - | - | - | not measured |")
            continue
        low, high = diff.ci()
        ci = "-" if math.isnan(low) else f"[{low:+.2f}, {high:+.2f}]"
        if not diff.tested:
            one = diff.design == "one member"
            verdict = "no test: " + ("1 member, compares two students, not two methods" if one else "no spread")
        else:
            verdict = "**difference**" if diff.significant(test["p_holm"]) else "not established"
        lines.append(
            f"| {name} | {_members(diff)} | {diff.mean:+.2f} | {ci} | {_fmt_p(diff.p)} | "
            f"{_fmt_p(test['p_holm'])} | {verdict} |"
        )
    return lines + [
        "",
        f"Two-sided member-level t test at the {ALPHA:.0%} level (paired by member where both rows have the same "
        f"members, two-sample otherwise), Holm-adjusted over these {len(tests)} question(s). A question counts as "
        "answered only here; the table below is exploratory.",
        "",
    ]


def differences_markdown(columns: list[str], diffs: list[dict], primary: list[str] | None = None) -> list[str]:
    """The report's differences: the primary comparisons, then every difference as exploratory."""
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
    one_member = any(
        entry[k].design == "one member" for entry in diffs for k in entry if k.endswith(" diff") and entry[k]
    )
    tests = sum(1 for entry in diffs for key in entry if key.endswith(" diff"))
    caveat = (
        "A cell marked '1 member' has one distillation (or random-init seed) on a side: it compares two "
        "students, not two methods, and its '± within' (over fine-tuning seeds or few-shot episodes) leaves "
        "out the distillation's own seed-to-seed noise, so it is description, never a test. "
        if one_member
        else ""
    )
    return (
        ["### Primary comparisons", ""]
        + primary_markdown(primary_tests(diffs, primary or []))
        + ["### All differences (exploratory)", ""]
        + lines
        + [
            "",
            "Mean difference ± its standard error over members (independent distillations and random-init "
            "seeds; fine-tuning seeds and few-shot episodes are averaged within a member; see "
            "`seed_transfer/pipelines/differences.py`). " + caveat + "**Bold**: a member-level two-sided "
            f"t test gives p < {ALPHA:.2f}, not corrected for the {tests} tests of this table: exploratory.",
            "",
        ]
        + planning_markdown(columns, diffs)
    )


def planning_markdown(columns: list[str], diffs: list[dict]) -> list[str]:
    """A planning figure for each tested difference that did not pass: members per row for
    80% power at its measured mean and member-level spread (:meth:`~..differences.Difference.members_for_power`)."""
    items = []
    for entry in diffs:
        for column in columns:
            diff = entry.get(f"{column} diff")
            needed = diff.members_for_power() if diff is not None and not diff.significant() else None
            if needed is not None:
                more = "more than " if needed > MAX_PLANNED_MEMBERS else ""
                count = min(needed, MAX_PLANNED_MEMBERS)
                items.append(f"{entry['row'].replace(' - ', ' − ')} {column}: {more}{count} (has {_members(diff)})")
    if not items:
        return []
    return [
        f"Planning, not a result: members per row for {POWER:.0%} power if the true difference were the "
        "measured mean and the member-level spread stayed as measured (a new run of that size, fixed before "
        "it starts, tests it): " + "; ".join(items),
        "",
    ]

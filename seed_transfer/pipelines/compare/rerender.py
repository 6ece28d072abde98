"""Re-analyse a finished comparison under today's statistics, from its ``results.csv`` and
``config.yaml`` alone (no student, no result JSON needed: a published folder keeps these two):

    python tools/compare.py --rerender docs/results/compare_small4

The per-unit values of every row are read back (``<column> values``, member by member, then the
nested units in order) and regrouped into members: a classification column of a replicated row
(strategies, random init) has ``distill.seeds`` members, a fine-tuning column ``det.seeds`` /
``seg.seeds`` units per member, a fixed row (pixels, a teacher) one member. The row lines of
``results.csv`` are kept byte for byte; the difference lines, the report's "Differences" section
and ``differences.png`` are written anew (differences of the 4-decimal values the file keeps). The
report as it was is kept once as ``report_before_rerender.md``; the rest of it is not touched.
"""

from __future__ import annotations

import csv
import io
import time
from pathlib import Path

from seed_core.config import ConfigError, load_config
from seed_core.errors import UserError
from seed_core.run_info import code_version

from .report import plot_differences
from .schema import CompareConfig
from .table import DET_METRICS, SEG_METRICS, differences, differences_markdown, replicated, write_results_csv

ORIGINAL_REPORT = "report_before_rerender.md"


def _members(values: list[float], per_member: int, first: int, where: str) -> dict[tuple[int, int], float]:
    if per_member < 1 or len(values) % per_member:
        raise UserError(f"{where}: {len(values)} values do not split into members of {per_member} units")
    return {(first + i // per_member, i % per_member): v for i, v in enumerate(values)}


def read_units(cfg: CompareConfig, results_csv: Path) -> tuple[list[str], list[dict], list[str]]:
    """(columns, one entry per row with ``<c> units``, the row lines of the file as written)."""
    with open(results_csv, newline="") as f:  # the csv module's \r\n line ends, kept as written
        text = f.read()
    lines = text.splitlines(keepends=True)
    reader = csv.DictReader(io.StringIO(text))
    columns = [h[: -len(" values")] for h in reader.fieldnames or [] if h.endswith(" values")]
    table, row_lines = [], [lines[0]]
    for line, record in zip(lines[1:], reader):
        if record["kind"] != "row":
            continue
        row_lines.append(line)
        entry = {"row": record["row"], "kind": "row", "weights": record["weights"]}
        for column in columns:
            values = [float(v) for v in record[f"{column} values"].split()]
            if not values:
                continue
            if not replicated(record["row"]):
                per_member = len(values)
            elif column in DET_METRICS:
                per_member = cfg.det.seeds
            elif column in SEG_METRICS:
                per_member = cfg.seg.seeds
            else:
                per_member = len(values) // cfg.distill.seeds
            where = f"{results_csv}: row {record['row']!r}, column {column!r}"
            entry[f"{column} units"] = _members(values, per_member, cfg.distill.first_member, where)
        table.append(entry)
    return columns, table, row_lines


def rerender(folder: str | Path, command: str | None = None) -> Path:
    """Rewrite the differences of the comparison in ``folder`` (see the module docstring); returns report.md."""
    folder = Path(folder)
    for name in ("results.csv", "config.yaml", "report.md"):
        if not (folder / name).is_file():
            raise UserError(f"{folder}: no {name}; --rerender takes a finished comparison's output folder")
    try:
        cfg = load_config(CompareConfig, folder / "config.yaml")
    except ConfigError as err:
        raise UserError(f"{folder / 'config.yaml'}: {err}") from None
    columns, table, row_lines = read_units(cfg, folder / "results.csv")
    diffs = differences(columns, table)
    buffer = folder / ".results_rerender.csv"
    write_results_csv(columns, diffs, buffer)
    with open(buffer, newline="") as f:
        diff_lines = f.read().splitlines(keepends=True)[1:]
    buffer.unlink()
    with open(folder / "results.csv", "w", newline="") as f:
        f.write("".join(row_lines + diff_lines))
    has_forest = plot_differences(columns, diffs, cfg.primary, folder / "differences.png")

    report = folder / "report.md"
    original = folder / ORIGINAL_REPORT
    if not original.is_file():
        original.write_text(report.read_text())
    text = original.read_text()
    start = text.index("## Differences") if "## Differences" in text else None
    end = next((text.index(m, start) for m in ("Per-unit values", "![results]") if start and m in text[start:]), None)
    if start is None or end is None:
        raise UserError(f"{original}: no '## Differences' section to replace")
    commit = (code_version().get("git_commit") or "unknown")[:10]
    section = ["## Differences", ""]
    section += [
        f"> Re-rendered on {time.strftime('%Y-%m-%d')} at commit `{commit}` by `{command or 'rerender'}` under "
        "the member-level rule (`seed_transfer/pipelines/differences.py`), from this folder's results.csv and "
        f"config.yaml: the Results table and results.csv's row lines are unchanged; the report as first written "
        f"is `{ORIGINAL_REPORT}`.",
        "",
    ]
    section += differences_markdown(columns, diffs, cfg.primary)
    if has_forest:
        section += ["![differences](differences.png)", ""]
    report.write_text(text[:start] + "\n".join(section) + "\n" + text[end:])
    return report

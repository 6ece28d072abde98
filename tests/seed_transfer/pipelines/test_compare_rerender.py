import csv
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[3]
PUBLISHED = REPO / "docs/results/compare_small4"  # 4 members per strategy, 600 episodes, 2 x 3 fine-tunes


def _rows(path: Path) -> dict[str, dict]:
    with open(path, newline="") as f:
        return {r["row"]: r for r in csv.DictReader(f)}


def test_rerender_regroups_the_units_into_members_and_keeps_the_rows(tmp_path):
    folder = tmp_path / "small4"
    shutil.copytree(PUBLISHED, folder)
    original = (folder / "report.md").read_text()
    (folder / "report_before_rerender.md").unlink()  # as a folder that was never re-rendered
    (folder / "report.md").write_text((PUBLISHED / "report_before_rerender.md").read_text())
    result = subprocess.run(
        [sys.executable, str(REPO / "tools/compare.py"), "--rerender", str(folder)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    before, after = (PUBLISHED / "results.csv").read_bytes(), (folder / "results.csv").read_bytes()
    assert before.split(b"\r\nseed - random,")[0] == after.split(b"\r\nseed - random,")[0]  # row lines, byte for byte
    rows = _rows(folder / "results.csv")
    # independently: member means of the 600 episodes per member, then a paired t over the 4 members
    seed = np.array(rows["seed"]["5shot stamps values"].split(), float).reshape(4, 600).mean(1)
    moco = np.array(rows["moco"]["5shot stamps values"].split(), float).reshape(4, 600).mean(1)
    d = seed - moco
    assert float(rows["seed - moco"]["5shot stamps se"]) == pytest.approx(d.std(ddof=1) / 2, abs=1e-4)
    # random init's detection has one member (the pilot's rule): no method-level error
    assert rows["seed - random"]["AP se"] == "" and rows["seed - random"]["AP values"]
    report = (folder / "report.md").read_text()
    assert "### Primary comparisons" in report and "No primary comparison was declared" in report
    assert report.split("## Differences")[0] == original.split("## Differences")[0]  # the rest is kept
    assert "+2.00 (1 member; ± 0.75 within)" in report and "**+12.40 ± 1.02**" in report
    assert (folder / "report_before_rerender.md").read_text() == (PUBLISHED / "report_before_rerender.md").read_text()
    assert (folder / "differences.png").is_file()


def test_every_published_comparison_is_rendered_under_the_member_rule():
    # a published report whose differences were written before the member-level rule would say so
    for folder in ("compare_demo", "compare_demo_mnv3l", "compare_small", "compare_small4"):
        report = (REPO / "docs/results" / folder / "report.md").read_text()
        assert "averaged within a member" in report, folder
        rows = _rows(REPO / "docs/results" / folder / "results.csv")
        one_member = folder.startswith("compare_demo")
        for row in rows.values():
            if row["kind"] == "difference" and one_member:  # one distillation per strategy: nothing tested
                assert all(row[k] == "" for k in row if k.endswith(" se")), folder
    table = (REPO / "docs/results/compare_demo/report.md").read_text().split("### All differences")[1]
    assert not [line for line in table.splitlines() if line.startswith("| ") and "**" in line]


def test_rerender_refuses_a_folder_that_is_not_a_comparison(tmp_path):
    result = subprocess.run(
        [sys.executable, str(REPO / "tools/compare.py"), "--rerender", str(tmp_path)], capture_output=True, text=True
    )
    assert result.returncode == 2 and "no results.csv" in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1

"""The golden result: the toy comparison preset must reproduce its committed results.csv
byte for byte (every score, spread and per-seed value of every row and difference)."""

import difflib

import pytest

from golden import EXPECTED, golden_results


@pytest.mark.slow
def test_the_golden_comparison_reproduces_its_committed_results(tmp_path):
    produced = golden_results(tmp_path / "cmp", tmp_path / "datasets")
    expected = EXPECTED.read_text()
    if produced != expected:
        diff = "".join(
            difflib.unified_diff(expected.splitlines(True), produced.splitlines(True), "committed", "produced", n=0)
        )
        pytest.fail(
            "the golden comparison moved (if that is intended, run "
            f"python tests/golden/regenerate.py and say why in the commit):\n{diff[:4000]}"
        )

"""The golden result: the toy comparison preset must reproduce its committed results.csv
byte for byte (every score, spread and per-seed value of every row and difference)."""

import csv
import difflib

import pytest
from golden import GOLDEN, HERE, HISTORICAL, cpu_kind, expected_file, golden_results


@pytest.mark.slow
def test_the_golden_comparison_reproduces_its_committed_results(tmp_path):
    path = expected_file()
    assert path is not None, (
        f"no golden results.csv for this CPU kind {cpu_kind()} (tests/golden/golden.py GOLDEN): run "
        "python tests/golden/regenerate.py on it and add the file, with that kind, to GOLDEN"
    )
    produced = golden_results(tmp_path / "cmp", tmp_path / "datasets")
    expected = path.read_text()
    if produced != expected:
        diff = "".join(
            difflib.unified_diff(expected.splitlines(True), produced.splitlines(True), "committed", "produced", n=0)
        )
        pytest.fail(
            "the golden comparison moved (if that is intended, run "
            f"python tests/golden/regenerate.py and say why in the commit):\n{diff[:4000]}"
        )


def test_the_golden_files_of_each_cpu_kind_tell_the_same_story():
    """Another CPU kind moves the last digits, not the results: the same rows and columns, every
    mean, std and standard error within 0.5 of the other file's (scores and AP in %), and most
    per-unit values (a few-shot episode is a whole number of queries) identical. A historical file
    (``golden.HISTORICAL``: a kind not regenerated since a change meant to move numbers) is compared
    on the rows' cells that have as many units in both files (the change added random init's member)."""
    first, *others = [list(csv.DictReader((HERE / name).open())) for name in [*GOLDEN, *HISTORICAL]]
    assert others, "one golden file: nothing to compare across CPU kinds"
    for other in others:
        assert [(r["row"], r["kind"]) for r in other] == [(r["row"], r["kind"]) for r in first]
        summaries, units = [], []
        for row_a, row_b in zip(first, other):
            assert row_a.keys() == row_b.keys()
            if row_a["kind"] != "row":
                continue  # the differences' errors moved with the rule
            for column in [c for c in list(row_a)[3:] if c.endswith(" values")]:
                a, b = row_a[column].split(), row_b[column].split()
                if len(a) != len(b):
                    continue  # random init's fine-tuned members: 2 now, 1 before
                base = column[: -len(" values")]
                units += [(float(x), float(y)) for x, y in zip(a, b)]
                summaries += [
                    (float(row_a[c]), float(row_b[c])) for c in (base, f"{base} std", f"{base} se") if row_a[c]
                ]
        assert summaries and max(abs(a - b) for a, b in summaries) <= 0.5
        assert sum(a == b for a, b in units) >= 0.9 * len(units)


def test_a_cpu_kind_takes_the_golden_file_whose_recorded_keys_match():
    assert expected_file({"vendor": "GenuineIntel", "capability": "AVX512"}) is None  # to regenerate (HISTORICAL)
    assert expected_file({"vendor": "AuthenticAMD", "capability": "AVX2"}).name == "compare_tiny_results_amd_avx2.csv"
    assert expected_file({"vendor": "AuthenticAMD", "capability": "AVX512"}) is None

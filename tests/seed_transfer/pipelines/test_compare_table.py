import csv
import math
import statistics

import pytest

from seed_transfer.pipelines.compare.table import (
    comparison_pairs,
    differences,
    differences_markdown,
    primary_tests,
    results_table,
    write_results_csv,
)
from seed_transfer.pipelines.differences import member_difference


def _cls(row, member, linear, knn, fewshot=None):
    result = {
        "model": row if not member else f"{row}-s{member}",
        "row": row,
        "member": member,
        "dataset": "stamps",
        "metric": "top1",
        "linear": {"score": linear},
        "knn": {"score": knn},
    }
    if fewshot is not None:
        result["fewshot"] = {"5shot": {"score": fewshot}, "1shot": {"score": fewshot - 10}}
    return result


def _det(values):
    return {"summary": {"bbox": {"AP": {"mean": sum(values) / len(values), "std": 0.0, "values": values}}}}


def _table():
    cls = [
        _cls("seed", 0, 60.0, 55.0, 70.0),
        _cls("seed", 1, 62.0, 54.0, 71.0),
        _cls("moco", 0, 50.0, 45.0, 60.0),
        _cls("moco", 1, 51.0, 47.0, 62.0),
        _cls("random", 0, 40.0, 38.0, 45.0),
        _cls("random", 1, 41.0, 36.0, 44.0),
        _cls("pixels", 0, 39.0, 37.0, 40.0),
    ]
    det = {
        ("seed", 0): _det([16.0, 17.0]),
        ("seed", 1): _det([15.0, 16.5]),
        ("moco", 0): _det([15.0, 15.5]),
        ("moco", 1): _det([14.5, 15.5]),
        ("random", 0): _det([12.0, 13.0]),
    }
    names = ["seed", "moco", "random", "pixels"]
    return results_table(names, {n: f"{n}.pth" for n in names}, cls, [det, {}])


def test_rows_aggregate_their_members_and_seeds():
    columns, table = _table()
    assert columns == ["linear stamps", "knn stamps", "1shot stamps", "5shot stamps", "AP"]
    seed = table[0]
    assert seed["linear stamps"] == 61.0 and seed["linear stamps values"] == [60.0, 62.0]
    assert seed["AP values"] == [16.0, 17.0, 15.0, 16.5] and seed["AP"] == pytest.approx(16.125)
    assert table[2]["AP values"] == [12.0, 13.0]  # the fixture's random init has one fine-tuned member
    assert "AP" not in table[3]  # pixels: classification only


def test_students_are_compared_with_random_and_moco():
    columns, table = _table()
    assert comparison_pairs(table) == [("seed", "random"), ("moco", "random"), ("seed", "moco")]
    diffs = {d["row"]: d for d in differences(columns, table)}
    seed_random = diffs["seed - random"]
    assert seed_random["linear stamps values"] == [20.0, 21.0]  # paired by member (random-init seed)
    assert seed_random["AP values"] == [4.0, 4.0, 3.0, 3.5]  # random's one member pairs with both
    # ... as description only: one random member is no replicate, so no method-level test
    assert seed_random["AP diff"].design == "one member" and not seed_random["AP diff"].tested
    assert seed_random["linear stamps diff"].design == "paired"
    assert diffs["seed - moco"]["5shot stamps"] == pytest.approx(9.5)


def test_results_csv_holds_rows_and_differences(tmp_path):
    columns, table = _table()
    diffs = differences(columns, table)
    write_results_csv(columns, table + diffs, tmp_path / "results.csv")
    with open(tmp_path / "results.csv") as f:
        rows = {r["row"]: r for r in csv.DictReader(f)}
    assert rows["seed"]["kind"] == "row" and rows["seed - moco"]["kind"] == "difference"
    assert rows["seed"]["linear stamps values"] == "60.0000 62.0000"
    assert float(rows["seed - moco"]["linear stamps"]) == pytest.approx(10.5)
    assert float(rows["seed - moco"]["linear stamps se"]) == pytest.approx(0.5)  # d = 10, 11
    assert rows["pixels"]["AP"] == ""
    text = "\n".join(differences_markdown(columns, diffs))
    # 21 standard errors over 2 distillations pass the member-level t test (12.71); 3 would not
    assert "| seed − moco |" in text and "**+10.50 ± 0.50**" in text
    assert "+3.62 (1 member; ± 0.24 within)" in text  # seed - random AP: random has one member
    assert "No primary comparison was declared" in text and "exploratory" in text
    assert "Planning, not a result" in text and "seed − moco knn stamps: 3 (has 2 vs 2)" in text


def test_primary_comparisons_are_holm_adjusted_and_the_rest_exploratory():
    columns, table = _table()
    diffs = differences(columns, table)
    tests = primary_tests(diffs, ["seed - moco linear stamps", "seed - random AP"])
    linear, ap = tests
    assert ap["diff"].design == "one member" and math.isnan(ap["p_holm"])
    assert linear["p_holm"] == pytest.approx(min(1.0, 2 * linear["diff"].p))  # the untested one counts in the family
    text = "\n".join(differences_markdown(columns, diffs, ["seed - moco linear stamps", "seed - random AP"]))
    primary = text.split("### All differences")[0]
    assert "| seed − moco linear stamps | 2 vs 2 | +10.50 | [" in primary
    assert "no test: 1 member, compares two students, not two methods" in primary
    assert "### All differences (exploratory)" in text


def test_a_difference_that_does_not_pass_gets_a_planning_figure():
    noisy = member_difference(
        {(m, 0): v for m, v in enumerate([11.0, 13.0, 9.0, 11.0])}, {(m, 0): 10.0 for m in range(4)}
    )
    clear = member_difference({(m, 0): v for m, v in enumerate([16.0, 17.0, 18.0])}, {(m, 0): 13.0 for m in range(3)})
    diffs = [{"row": "seed - random", "AP": noisy.mean, "AP diff": noisy, "5shot": clear.mean, "5shot diff": clear}]
    text = "\n".join(differences_markdown(["AP", "5shot"], diffs))
    assert "**+4.00 ± 0.58**" in text and "+1.00 ± 0.82" in text
    planning = text.split("Planning, not a result")[1]
    assert "seed − random AP: 23 (has 4 vs 4)" in planning and "5shot:" not in planning


def test_fewshot_units_are_episodes_paired_across_rows():
    def result(row, per_episode):
        return {
            "model": row,
            "row": row,
            "member": 0,
            "dataset": "d",
            "metric": "top1",
            "linear": {"score": 50.0},
            "fewshot": {
                "5shot": {"score": sum(per_episode) / len(per_episode), "per_episode": per_episode},
                "note": "ignored",
            },
        }

    cls = [result("seed", [60.0, 80.0, 70.0, 90.0]), result("random", [40.0, 70.0, 50.0, 80.0])]
    columns, table = results_table(["seed", "random"], {"seed": "s", "random": "random"}, cls, [])
    assert columns == ["linear d", "5shot d"] and table[0]["5shot d values"] == [60.0, 80.0, 70.0, 90.0]
    (diff,) = differences(columns, table)
    assert diff["5shot d values"] == [20.0, 10.0, 20.0, 10.0]
    # one member each: the episodes' error is the nested component, described, never tested
    assert diff["5shot d diff"].nested_se == pytest.approx(statistics.stdev([20.0, 10.0, 20.0, 10.0]) / 2)
    assert math.isnan(diff["5shot d se"]) and not diff["5shot d diff"].tested
    assert "linear d se" in diff and math.isnan(diff["linear d se"])  # one unit: not measured


def test_fewshot_episodes_of_every_member_count():
    def result(member, per_episode):
        fewshot = {"5shot": {"score": sum(per_episode) / len(per_episode), "per_episode": per_episode}}
        return {"model": "seed", "row": "seed", "member": member, "dataset": "d", "metric": "top1", "fewshot": fewshot}

    cls = [result(0, [60.0, 80.0]), result(1, [40.0, 50.0])]
    columns, table = results_table(["seed"], {"seed": "s"}, cls, [])
    assert table[0]["5shot d values"] == [60.0, 80.0, 40.0, 50.0] and table[0]["5shot d"] == pytest.approx(57.5)

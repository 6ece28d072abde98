import math
import statistics

import pytest
from scipy import stats

from seed_transfer.pipelines.differences import (
    design_power,
    holm,
    member_difference,
    member_means,
    pair_units,
    t_threshold,
)


def units(per_member: dict[int, list[float]]) -> dict[tuple[int, int], float]:
    return {(m, j): v for m, values in per_member.items() for j, v in enumerate(values)}


def test_units_pair_by_member_and_nested_unit():
    a = {(0, 0): 10.0, (0, 1): 11.0, (1, 0): 12.0}
    b = {(0, 0): 9.0, (0, 1): 9.5, (1, 1): 1.0}
    assert pair_units(a, b) == [((0, 0), 10.0, 9.0), ((0, 1), 11.0, 9.5)]


def test_member_means_average_the_nested_units():
    assert member_means(units({3: [1.0, 2.0, 6.0], 5: [4.0]})) == {3: 3.0, 5: 4.0}


def test_paired_members_are_the_samples_not_the_nested_units():
    # 2 members x 3 fine-tuning seeds: the test has 1 degree of freedom, whatever the seeds say
    a = units({0: [20.0, 20.1, 19.9], 1: [10.0, 10.1, 9.9]})
    b = units({0: [10.0, 10.0, 10.0], 1: [5.0, 5.0, 5.0]})
    diff = member_difference(a, b)
    d = [10.0, 5.0]
    assert diff.design == "paired" and diff.members == (2, 2) and diff.df == 1 and diff.units == 6
    assert diff.mean == pytest.approx(7.5) and diff.se == pytest.approx(statistics.stdev(d) / math.sqrt(2))
    assert diff.p == pytest.approx(stats.ttest_rel([20.0, 10.0], [10.0, 5.0]).pvalue)
    assert not diff.significant()  # 3 standard errors over 2 distillations: t(1) needs 12.7
    # the nested component is described, and far smaller
    assert diff.nested_se < diff.se


def test_two_sample_when_the_member_sets_differ():
    a = units({0: [1.0], 1: [2.0], 2: [4.0]})
    b = units({5: [0.5], 6: [0.0], 7: [1.5], 8: [0.2]})
    diff = member_difference(a, b)
    reference = stats.ttest_ind([1.0, 2.0, 4.0], [0.5, 0.0, 1.5, 0.2])
    assert diff.design == "two-sample" and diff.members == (3, 4) and diff.df == 5
    assert diff.p == pytest.approx(reference.pvalue) and diff.mean / diff.se == pytest.approx(reference.statistic)


def test_a_fixed_row_is_compared_with_the_members_of_the_replicated_one():
    # the teacher (one fixed checkpoint) on the same 3 episodes as 4 distilled students
    teacher = units({0: [70.0, 60.0, 80.0]})
    students = units({m: [40.0 + m, 30.0 + m, 50.0 + 2 * m] for m in range(4)})
    diff = member_difference(students, teacher, b_fixed=True)
    student_means = [statistics.fmean([40.0 + m, 30.0 + m, 50.0 + 2 * m]) for m in range(4)]
    reference = stats.ttest_1samp(student_means, 70.0)
    assert diff.design == "one-sample" and diff.members == (4, 0) and diff.df == 3
    assert diff.p == pytest.approx(reference.pvalue) and diff.mean == pytest.approx(
        statistics.fmean(student_means) - 70
    )
    flipped = member_difference(teacher, students, a_fixed=True)
    assert flipped.mean == pytest.approx(-diff.mean) and flipped.p == pytest.approx(diff.p)


def test_one_member_has_no_method_level_test_whatever_its_nested_units_say():
    # one distillation each, 600 episodes 10 points apart: a difference between two students
    a = units({0: [60.0 + (j % 7) for j in range(600)]})
    b = units({0: [50.0 + (j % 5) for j in range(600)]})
    diff = member_difference(a, b)
    assert diff.design == "one member" and not diff.tested and math.isnan(diff.p) and not diff.significant()
    assert diff.nested_se > 0 and diff.nested_se < 0.2  # the within-student error, descriptive only
    assert math.isnan(diff.ci()[0]) and diff.members_for_power() is None
    # nor with one member against a replicated row (random init's single detection member of old runs)
    assert member_difference(units({0: [1.0, 2.0], 1: [3.0, 4.0]}), units({0: [0.0, 0.0]})).design == "one member"


def test_identical_member_differences_measure_no_spread():
    # two linear probes that both differ by the same 4 of 112 images: the spread is unknown, not 0
    same = member_difference(units({0: [10.0], 1: [10.0]}), units({0: [6.0], 1: [6.0]}))
    assert same.se == 0 and not same.tested and not same.significant() and same.members_for_power() is None


def test_missing_values_give_no_difference():
    assert member_difference({(0, 0): 3.0}, {(1, 1): 1.0}) is None
    assert member_difference({(0, 0): math.nan, (1, 0): 1.0}, {(0, 0): 1.0, (1, 0): 1.0}) is None


def test_confidence_interval_and_p_agree():
    a = units({m: [v] for m, v in enumerate([3.1, 4.0, 2.2, 5.3, 3.9])})
    b = units({m: [0.0] for m in range(5)})
    diff = member_difference(a, b)
    low, high = diff.ci()
    assert low > 0 and diff.p < 0.05 and diff.significant()
    interval = stats.ttest_1samp([3.1, 4.0, 2.2, 5.3, 3.9], 0.0).confidence_interval(0.95)
    assert (low, high) == pytest.approx((interval.low, interval.high))


def test_holm_adjusts_over_the_family_and_keeps_the_order():
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert holm([0.04]) == [0.04]
    adjusted = holm([0.02, math.nan])  # an untested question still counts in the family
    assert adjusted[0] == pytest.approx(0.04) and math.isnan(adjusted[1])


def test_the_planning_figure_is_the_smallest_n_with_the_power():
    # the pilot's SEED - MoCo v2 5-shot member differences (compare_small4)
    pilot = [2.85, 5.28, 2.07, 10.08]
    diff = member_difference(units({m: [v] for m, v in enumerate(pilot)}), units({m: [0.0] for m in range(4)}))
    assert diff.p == pytest.approx(0.067, abs=0.002) and not diff.significant()
    n = diff.members_for_power()
    effect = statistics.fmean(pilot) / statistics.stdev(pilot)
    assert n == 7 and design_power("paired", effect, n) >= 0.8 > design_power("paired", effect, n - 1)
    assert design_power("paired", effect, 8) == pytest.approx(0.925, abs=0.002)  # configs/compare/confirm.yaml


def test_power_matches_simulation():
    # paired t at 5 members and an effect of 1.2 member SDs: noncentral t against 20,000 simulated tests
    import numpy as np

    rng = np.random.default_rng(0)
    samples = rng.normal(1.2, 1.0, size=(20_000, 5))
    t = samples.mean(1) / (samples.std(1, ddof=1) / math.sqrt(5))
    simulated = float(np.mean(np.abs(t) > t_threshold(5)))
    assert design_power("paired", 1.2, 5) == pytest.approx(simulated, abs=0.015)


def test_the_threshold_falls_with_the_samples_to_the_normal_quantile():
    counts = [2, 3, 6, 30, 10**6]
    values = [t_threshold(n) for n in counts]
    assert values == sorted(values, reverse=True)
    assert [round(v, 2) for v in values[:3]] == [12.71, 4.30, 2.57]
    assert t_threshold(math.inf) == pytest.approx(1.959964, abs=1e-6)

import math
import statistics

import pytest

from seed_transfer.pipelines.differences import pair_units, paired_difference, t_threshold


def test_units_pair_by_member_and_seed():
    a = {(0, 0): 10.0, (0, 1): 11.0, (1, 0): 12.0}
    b = {(0, 0): 9.0, (0, 1): 9.5, (1, 1): 1.0}
    assert pair_units(a, b) == [((0, 0), 10.0, 9.0), ((0, 1), 11.0, 9.5)]


def test_a_single_member_row_pairs_with_every_member():
    a = {(0, 0): 10.0, (0, 1): 11.0, (1, 0): 12.0, (1, 1): 14.0}
    b = {(0, 0): 9.0, (0, 1): 10.0}  # e.g. random init's detection: one member
    assert [x - y for _, x, y in pair_units(a, b)] == [1.0, 1.0, 3.0, 4.0]
    assert [x - y for _, x, y in pair_units(b, a)] == [-1.0, -1.0, -3.0, -4.0]


def test_standard_error_over_units():
    a = {(0, s): v for s, v in enumerate([16.0, 17.0, 18.0])}
    b = {(0, s): v for s, v in enumerate([14.0, 14.0, 17.0])}
    diff = paired_difference(a, b)
    d = [2.0, 3.0, 1.0]
    assert diff.mean == pytest.approx(2.0) and diff.values == d and diff.units == 3 and diff.members == 1
    assert diff.se == pytest.approx(statistics.stdev(d) / math.sqrt(3)) and diff.se_from == "units"


def test_distillation_noise_counts_when_it_is_larger():
    # fine-tuning seeds agree within a member, members disagree: the member-level error wins
    a = {(0, 0): 20.0, (0, 1): 20.1, (1, 0): 10.0, (1, 1): 10.1}
    b = {(0, 0): 10.0, (0, 1): 10.0}
    diff = paired_difference(a, b)
    member_means = [10.05, 0.05]
    assert diff.se_from == "members" and diff.members == 2
    assert diff.se == pytest.approx(statistics.stdev(member_means) / math.sqrt(2))
    assert not diff.significant()


def test_one_unit_has_no_error_and_missing_values_no_difference():
    one = paired_difference({(0, 0): 3.0}, {(0, 0): 1.0})
    assert one.mean == 2.0 and math.isnan(one.se) and one.se_from == "not measured" and not one.significant()
    assert paired_difference({(0, 0): 3.0}, {(1, 1): 1.0}) is None
    assert paired_difference({(0, 0): math.nan}, {(0, 0): 1.0}) is None


def test_significance_is_a_student_t_test_over_the_samples():
    a = {(0, s): v for s, v in enumerate([16.0, 17.0, 18.0])}
    b = {(0, s): v - 3.0 for s, v in enumerate([16.0, 17.5, 17.5])}
    diff = paired_difference(a, b)  # d = 3, 2.5, 3.5: 6 standard errors over 3 units
    assert diff.threshold() == pytest.approx(4.303, abs=1e-3) and diff.significant()
    assert diff.threshold(2) == pytest.approx(12.706, abs=1e-3)
    assert diff.threshold(10_000) == pytest.approx(1.96, abs=1e-3)


def test_a_few_standard_errors_over_two_distillations_prove_nothing():
    # two members, 3.3 standard errors apart from zero: beyond "2 SE", not beyond t(1) = 12.7
    two = paired_difference({(0, 0): 5.0, (1, 0): 3.0}, {(0, 0): 0.0, (1, 0): 0.0})
    assert two.samples == 2 and two.mean / two.se == pytest.approx(4.0) and not two.significant()
    # the same ratio over 30 paired units passes
    d = [3.0 + (1 if s % 2 else -1) * 0.5 * math.sqrt(30) for s in range(30)]
    many = paired_difference({(0, s): v for s, v in enumerate(d)}, {(0, s): 0.0 for s in range(30)})
    assert many.samples == 30 and 3.0 < many.mean / many.se < 6.0 and many.significant()


def test_identical_samples_measure_no_spread():
    # two linear probes that both differ by the same 4 of 112 images: the spread is unknown, not 0
    same = paired_difference({(0, 0): 10.0, (1, 0): 10.0}, {(0, 0): 6.0, (1, 0): 6.0})
    assert same.se == 0 and not same.significant() and same.samples_needed() is None


def test_samples_needed_extrapolates_the_measured_spread():
    # d = 1, 3, -1, 1: mean 1, std 1.633, se 0.816 over 4 units: within noise
    a = {(0, s): v for s, v in enumerate([11.0, 13.0, 9.0, 11.0])}
    b = {(0, s): 10.0 for s in range(4)}
    diff = paired_difference(a, b)
    assert not diff.significant() and diff.se_from == "units"
    needed = diff.samples_needed()
    spread = statistics.stdev([1.0, 3.0, -1.0, 1.0])
    assert needed == 13  # t(12) = 2.179: 2.179 * 1.633 / sqrt(13) = 0.987 < 1; t(11) * 1.633 / sqrt(12) = 1.038
    assert diff.threshold(needed) * spread / math.sqrt(needed) < 1.0
    assert diff.threshold(needed - 1) * spread / math.sqrt(needed - 1) >= 1.0
    # over members: the count is of distillations (mean 5.05, spread 7.071 over 2 members)
    members = paired_difference({(0, 0): 20.0, (0, 1): 20.1, (1, 0): 10.0, (1, 1): 10.1}, {(0, 0): 10.0, (0, 1): 10.0})
    n = members.samples_needed()
    assert members.se_from == "members" and n == 11  # t(10) = 2.228: 2.228 * 7.071 / sqrt(11) = 4.75 < 5.05
    assert members.threshold(n - 1) * 7.0711 / math.sqrt(n - 1) >= 5.05
    assert paired_difference({(0, 0): 3.0}, {(0, 0): 1.0}).samples_needed() is None  # error not measured
    # a mean at floating-point noise asks for an astronomical count: an int, not a scipy TypeError
    tiny = paired_difference({(0, s): v for s, v in enumerate([1.0, -1.0 + 1e-14])}, {(0, s): 0.0 for s in range(2)})
    assert tiny.samples_needed() > 10**25


def test_the_threshold_falls_with_the_samples_to_the_normal_quantile():
    counts = [2, 3, 6, 30, 10**6]
    values = [t_threshold(n) for n in counts]
    assert values == sorted(values, reverse=True)
    assert [round(v, 2) for v in values[:3]] == [12.71, 4.30, 2.57]
    assert t_threshold(math.inf) == pytest.approx(1.959964, abs=1e-6)
    assert t_threshold(math.inf) < values[-1]  # below every finite count

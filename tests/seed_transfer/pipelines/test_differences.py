import math
import statistics

import pytest

from seed_transfer.pipelines.differences import pair_units, paired_difference


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


def test_significance_needs_two_standard_errors():
    a = {(0, s): v for s, v in enumerate([16.0, 17.0, 18.0])}
    b = {(0, s): v - 3.0 for s, v in enumerate([16.0, 17.5, 17.5])}
    assert paired_difference(a, b).significant()


def test_samples_needed_extrapolates_the_measured_spread():
    # d = 1, 3, -1, 1: mean 1, std 1.633, se 0.816 over 4 units; 2 se > 1, so within noise
    a = {(0, s): v for s, v in enumerate([11.0, 13.0, 9.0, 11.0])}
    b = {(0, s): 10.0 for s in range(4)}
    diff = paired_difference(a, b)
    assert not diff.significant() and diff.se_from == "units"
    needed = diff.samples_needed()
    spread = statistics.stdev([1.0, 3.0, -1.0, 1.0])
    assert needed == 11  # (2 * 1.633 / 1) ** 2 = 10.67: 11 units
    assert 2 * spread / math.sqrt(needed) < 1.0 <= 2 * spread / math.sqrt(needed - 1)
    # over members: the count is of distillations
    members = paired_difference({(0, 0): 20.0, (0, 1): 20.1, (1, 0): 10.0, (1, 1): 10.1}, {(0, 0): 10.0, (0, 1): 10.0})
    assert members.se_from == "members" and members.samples_needed() == math.floor((2 * 7.071 / 5.05) ** 2) + 1
    assert paired_difference({(0, 0): 3.0}, {(0, 0): 1.0}).samples_needed() is None  # error not measured

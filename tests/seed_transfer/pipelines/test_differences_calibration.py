"""The comparison's test is calibrated: simulated nulls with distillation noise give a 5% false-positive
rate in every design (members 1-8 per row, nested units 1-600, one-member and fixed rows, unequal
members, nested-noise ratios 0.1-10), and a true effect is found.

The simulation is the comparison's own structure: a row's unit ``(member, j)`` is

    row level + member effect (the distillation's noise, std 1) + nested effect j (shared by every
    member of every row: the same episodes / fine-tuning seeds) + nested noise (std ``ratio``)

and the test is :func:`seed_transfer.pipelines.differences.member_difference` itself, called on the
unit dicts the report builds. Deterministic (fixed RNG seeds); about half a minute on 2 cores.
"""

import math

import numpy as np
import pytest

from seed_transfer.pipelines.differences import ALPHA, design_power, member_difference


def simulate_row(rng, members, nested: int, ratio: float, shared, level: float = 0.0) -> dict:
    effects = rng.normal(0.0, 1.0, len(members))
    values = level + effects[:, None] + shared[None, :nested] + rng.normal(0.0, ratio, (len(members), nested))
    keys = [(m, j) for m in members for j in range(nested)]
    return dict(zip(keys, values.ravel().tolist()))


def rejection_rate(design: dict, reps: int, effect: float = 0.0, seed: int = 0) -> tuple[float, int]:
    """(rate of significant differences, tests made) over ``reps`` simulated comparisons of ``design``."""
    rng = np.random.default_rng(seed)
    members_a, members_b = design["a"], design["b"]
    nested, ratio, fixed = design["nested"], design["ratio"], design.get("b_fixed", False)
    hits = tested = 0
    for _ in range(reps):
        shared = rng.normal(0.0, 2.0, nested)  # episode difficulty / fine-tuning seed: common to all rows
        a = simulate_row(rng, members_a, nested, ratio, shared, level=effect)
        if fixed:  # a given checkpoint: one fixed level, the same nested units, no member noise
            b = {(0, j): shared[j] for j in range(nested)}  # at the null: the rows' level
        else:
            b = simulate_row(rng, members_b, nested, ratio, shared)
        diff = member_difference(a, b, b_fixed=fixed)
        tested += diff.tested
        hits += diff.significant()
    return hits / reps, tested


M = lambda n, first=0: list(range(first, first + n))  # noqa: E731

# members per row, nested units, nested-noise ratio (nested std / member std), and how the rows relate
NULL_DESIGNS = [
    {"a": M(2), "b": M(2), "nested": 1, "ratio": 1.0},  # linear probes of 2 distillations per strategy
    {"a": M(2), "b": M(2), "nested": 3, "ratio": 0.1},  # detection: 2 members x 3 fine-tunes
    {"a": M(3), "b": M(3), "nested": 2, "ratio": 10.0},  # fine-tuning noise 10x the distillation's
    {"a": M(4), "b": M(4), "nested": 600, "ratio": 3.0},  # few-shot: 600 episodes per member
    {"a": M(8), "b": M(8), "nested": 1, "ratio": 0.5},  # the confirmatory run's classification columns
    {"a": M(8), "b": M(8), "nested": 50, "ratio": 10.0},
    {"a": M(5), "b": M(5), "nested": 10, "ratio": 1.0},
    {"a": M(3), "b": M(8), "nested": 2, "ratio": 1.0},  # unequal members: two-sample
    {"a": M(2), "b": M(6, first=10), "nested": 5, "ratio": 0.3},  # disjoint members, 2 vs 6 (Welch: 0.075)
    {"a": M(2), "b": M(8, first=10), "nested": 1, "ratio": 0.3},  # 2 vs 8 (Welch: 0.08)
    {"a": M(6), "b": M(4), "nested": 1, "ratio": 0.1},  # members 0-3 in both, 4-5 only in a: two-sample
    {"a": M(4), "b": [0], "nested": 20, "ratio": 1.0, "b_fixed": True},  # against the teacher row
    {"a": M(8), "b": [0], "nested": 600, "ratio": 5.0, "b_fixed": True},
]


@pytest.mark.parametrize(
    "design", NULL_DESIGNS, ids=lambda d: f"{len(d['a'])}v{len(d['b'])}x{d['nested']}r{d['ratio']}"
)
def test_the_false_positive_rate_is_five_percent_in_every_design(design):
    reps = 400 if design["nested"] >= 600 else 2000
    rate, tested = rejection_rate(design, reps, seed=len(design["a"]) * 1000 + design["nested"])
    assert tested == reps  # every design here has a method-level test
    mc_error = math.sqrt(ALPHA * (1 - ALPHA) / reps)
    assert abs(rate - ALPHA) < 4 * mc_error, f"false-positive rate {rate:.3f} (Monte-Carlo error {mc_error:.3f})"


@pytest.mark.parametrize(
    "design",
    [
        {"a": M(1), "b": M(1), "nested": 600, "ratio": 3.0},  # the demo: one distillation per strategy
        {"a": M(1), "b": M(1), "nested": 2, "ratio": 0.5},  # the demo's detection (1 x 2 each)
        {"a": M(2), "b": M(1), "nested": 3, "ratio": 1.0},  # 2 students x 3 fine-tunes vs 1 random member
        {"a": M(1), "b": [0], "nested": 100, "ratio": 1.0, "b_fixed": True},  # one student against the teacher
    ],
    ids=["demo-fewshot", "demo-det", "2x3-vs-1x3", "1-vs-teacher"],
)
def test_one_member_on_a_replicated_row_is_never_significant(design):
    # the old rule's false-positive rates here were 0.86, 0.14 and 0.16 (issue 26's simulation)
    rate, tested = rejection_rate(design, 300, seed=7)
    assert tested == 0 and rate == 0.0


def test_a_true_effect_of_three_member_sds_is_found_at_eight_members():
    design = {"a": M(8), "b": M(8), "nested": 20, "ratio": 1.0}
    rate, tested = rejection_rate(design, 500, effect=3.0, seed=3)
    # the member differences have std sqrt(2 + 2 * ratio^2 / nested) = 1.45: effect 2.07 of their std
    expected = design_power("paired", 3.0 / math.sqrt(2 + 2 / 20), 8)
    assert tested == 500 and rate >= 0.95 and rate == pytest.approx(expected, abs=0.03)


def test_power_grows_with_members_at_a_moderate_effect():
    rates = [
        rejection_rate({"a": M(n), "b": M(n), "nested": 5, "ratio": 1.0}, 600, effect=1.5, seed=n)[0] for n in (3, 8)
    ]
    assert rates[0] < rates[1] and rates[1] > 0.6

"""Differences between two initialisations, tested over their independent replicates.

A score of one row is measured on *units* ``(member, j)``. ``member`` is the experimental unit:
the independent distillation (or random-init seed) that produced the weights. ``j`` is nested
inside it: a detection / segmentation fine-tuning seed, a few-shot episode, or ``0`` for the
deterministic linear and kNN probes. Fine-tunes and episodes of one member share that member's
weights, so adding them can never remove the distillation's own noise: they are averaged within
the member and are never counted as degrees of freedom.

The estimator is the two-stage (summary-statistics) t test on member means:

- both rows replicated, with the same members (strategies of one comparison share member k's seed,
  so the same image order and views): a **paired** t over the member differences, ``n - 1`` df;
- both replicated, with different member sets (a member missing on one side): a **two-sample**
  Student t on the member means, with the pooled variance. Its null is that the two rows' members
  come from one distribution (the method makes no difference), under which it is exact; Welch's
  unequal-variance t was measured liberal here (a 7.5-8% false-positive rate at 2 members against
  6 or 8), and the comparison's own design gives every row the same members, so this case is rare;
- one row fixed (a given checkpoint, the teacher, raw pixels: no replicate noise): a
  **one-sample** t of the replicated row's member means against the fixed row's mean;
- a replicated row with one member: **no method-level test**. Such a difference compares two
  students, not two methods; its error over the nested units is shown as description only.

Why this and not a mixed model: when every member has the same nested units (the comparison's
design: the same episodes and fine-tuning seeds for every member), the member means are
independent and identically distributed, so the t test on them is exact for normal member noise,
whatever the nested-noise ratio and the number of nested units; a REML mixed model gives the same
point estimate, but its small-sample degrees of freedom need Satterthwaite or Kenward-Roger
corrections that statsmodels does not provide, and with 2-8 members those corrections are the
whole question. A permutation test over 8 paired members has only 256 sign flips (p >= 1/128).
The calibration test (``tests/seed_transfer/pipelines/test_differences_calibration.py``) simulates
nulls over designs of 1-8 members, 1-600 nested units and nested-noise ratios 0.1-10.

The nested variance is still reported, as a component: :attr:`Difference.nested_se` is the
standard error over the paired units, which is all the error a single-member difference has.

    a = {(0, 0): 16.1, (0, 1): 17.0, (1, 0): 15.2, (1, 1): 15.9}   # 2 members x 2 fine-tuning seeds
    b = {(0, 0): 14.0, (0, 1): 14.8, (1, 0): 14.9, (1, 1): 14.1}
    member_difference(a, b)      # Difference(mean=1.6, se=0.55, df=1, design="paired", ...): p = 0.21
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass

from scipy.stats import nct
from scipy.stats import t as student_t

Unit = tuple[int, int]  # (member, nested unit: fine-tuning seed or few-shot episode)
CONFIDENCE = 0.95  # two-sided: the confidence intervals' level; ALPHA the tests' size
ALPHA = 1 - CONFIDENCE
POWER = 0.8  # of the planning figure (Difference.members_for_power)
MAX_PLANNED_MEMBERS = 10_000  # beyond this the planning figure says "more than"


def t_threshold(samples: float) -> float:
    """The two-sided :data:`CONFIDENCE` Student-t critical value for ``samples - 1`` degrees of freedom:
    12.71 for 2 samples, 4.30 for 3, 2.36 for 8; ``math.inf`` gives the normal quantile (1.96)."""
    return t_quantile(float(samples) - 1)


def t_quantile(df: float) -> float:
    # float degrees of freedom: scipy takes no object-dtype ints
    return float(student_t.ppf(1 - ALPHA / 2, float(df)))


@dataclass(frozen=True)
class Difference:
    """``a - b`` for one column: the member-level test and the per-unit description."""

    mean: float  # mean member difference (paired), or difference of the mean member means
    se: float  # standard error of ``mean`` over members; NaN: no method-level test
    df: float  # degrees of freedom of the t test; NaN: no test
    design: str  # "paired", "two-sample", "one-sample", "one member", "fixed rows"
    members: tuple[int, int]  # members of a and of b (0: a fixed row)
    values: list[float]  # the paired unit differences, in unit order (what results.csv lists)
    nested_se: float  # standard error over those units: the nested component, descriptive only
    spread: float  # member-level std: of the member differences (paired) or pooled over both rows

    @property
    def tested(self) -> bool:
        """A method-level test exists: every replicated side has 2 or more members, and spread was seen."""
        return not math.isnan(self.se) and self.se > 0

    @property
    def units(self) -> int:
        return len(self.values)

    @property
    def p(self) -> float:
        """Two-sided p-value of the member-level t test (NaN when not :attr:`tested`)."""
        if not self.tested:
            return math.nan
        return float(2 * student_t.sf(abs(self.mean) / self.se, self.df))

    def ci(self) -> tuple[float, float]:
        """The :data:`CONFIDENCE` interval of the mean (NaNs when not tested)."""
        if not self.tested:
            return math.nan, math.nan
        half = t_quantile(self.df) * self.se
        return self.mean - half, self.mean + half

    def significant(self, p: float | None = None) -> bool:
        """``p`` (default: this difference's own, unadjusted) below :data:`ALPHA`; never without a test."""
        p = self.p if p is None else p
        return self.tested and not math.isnan(p) and p < ALPHA

    def members_for_power(self, power: float = POWER) -> int | None:
        """A plan, not a result: the members per row at which this design's two-sided t test would
        find the measured mean with probability ``power`` if the member-level spread stayed as
        measured (noncentral t). ``None`` without a test or with a zero mean; ``MAX_PLANNED_MEMBERS + 1``
        beyond :data:`MAX_PLANNED_MEMBERS`."""
        if not self.tested or self.mean == 0 or not self.spread > 0:
            return None
        for n in range(2, MAX_PLANNED_MEMBERS + 1):
            if design_power(self.design, abs(self.mean) / self.spread, n) >= power:
                return n
        return MAX_PLANNED_MEMBERS + 1


def design_power(design: str, effect: float, n: int) -> float:
    """Power of the two-sided :data:`ALPHA` t test of ``design`` with ``n`` members per replicated row,
    at a true mean of ``effect`` member-level standard deviations (a two-sample design: ``effect``
    in units of the common per-row std)."""
    if design == "two-sample":
        df, ncp = 2 * n - 2, effect * math.sqrt(n / 2)
    else:  # paired and one-sample: n members, the std of what is averaged
        df, ncp = n - 1, effect * math.sqrt(n)
    crit = t_quantile(df)
    return float(nct.sf(crit, df, ncp) + nct.cdf(-crit, df, ncp))


def member_means(units: dict[Unit, float]) -> dict[int, float]:
    """Member -> the mean of its nested units."""
    sums: dict[int, list[float]] = {}
    for (member, _), value in units.items():
        sums.setdefault(member, []).append(value)
    return {member: statistics.fmean(values) for member, values in sorted(sums.items())}


def pair_units(a: dict[Unit, float], b: dict[Unit, float]) -> list[tuple[Unit, float, float]]:
    """``(unit, a value, b value)`` for every unit both rows measured, in unit order; a row measured
    on one member is paired with every member of the other (the per-unit description only)."""
    members_a, members_b = {m for m, _ in a}, {m for m, _ in b}
    if len(members_b) == 1 and len(members_a) > 1:
        (only,) = members_b
        b = {(member, j): b[(only, j)] for member, j in a if (only, j) in b}
    elif len(members_a) == 1 and len(members_b) > 1:
        (only,) = members_a
        a = {(member, j): a[(only, j)] for member, j in b if (only, j) in a}
    return [(unit, a[unit], b[unit]) for unit in sorted(a) if unit in b]


def _se(values: list[float]) -> float:
    return statistics.stdev(values) / math.sqrt(len(values)) if len(values) > 1 else math.nan


def member_difference(
    a: dict[Unit, float], b: dict[Unit, float], a_fixed: bool = False, b_fixed: bool = False
) -> Difference | None:
    """``a - b`` tested over members (see the module docstring). ``a_fixed`` / ``b_fixed``: the row
    has no replicate noise (a given checkpoint, pixels), so its members are not replicates. ``None``
    when a value is missing / NaN, or the rows share no unit and no two-sample test applies."""
    if not a or not b or any(v is None or math.isnan(v) for v in (*a.values(), *b.values())):
        return None
    values = [x - y for _, x, y in pair_units(a, b)]  # empty when no unit is shared (two-sample only)
    nested_se = _se(values)
    ma, mb = member_means(a), member_means(b)
    na, nb = (0 if a_fixed else len(ma)), (0 if b_fixed else len(mb))
    replicated_both = not a_fixed and not b_fixed and na > 1 and nb > 1
    if not values and not (replicated_both and set(ma) != set(mb)):  # no unit shared: two-sample only
        return None
    if a_fixed and b_fixed:
        mean = statistics.fmean(values)
        return Difference(mean, math.nan, math.nan, "fixed rows", (0, 0), values, nested_se, math.nan)
    if (not a_fixed and na < 2) or (not b_fixed and nb < 2):
        return Difference(
            statistics.fmean(values), math.nan, math.nan, "one member", (na, nb), values, nested_se, math.nan
        )
    if a_fixed or b_fixed:  # one-sample: the replicated row's member means against the fixed row's mean
        sign, varying, fixed = (1, ma, mb) if b_fixed else (-1, mb, ma)
        level = statistics.fmean(fixed.values())
        diffs = [sign * (v - level) for v in varying.values()]
        spread = statistics.stdev(diffs)
        return Difference(
            statistics.fmean(diffs), _se(diffs), len(diffs) - 1, "one-sample", (na, nb), values, nested_se, spread
        )
    if set(ma) == set(mb):  # paired by member
        diffs = [ma[m] - mb[m] for m in ma]
        return Difference(
            statistics.fmean(diffs), _se(diffs), len(diffs) - 1, "paired", (na, nb), values, nested_se,
            statistics.stdev(diffs),
        )  # fmt: skip
    var_a, var_b = statistics.variance(ma.values()), statistics.variance(mb.values())
    pooled = math.sqrt(((na - 1) * var_a + (nb - 1) * var_b) / (na + nb - 2))
    se = pooled * math.sqrt(1 / na + 1 / nb)
    mean = statistics.fmean(ma.values()) - statistics.fmean(mb.values())
    return Difference(mean, se, na + nb - 2, "two-sample", (na, nb), values, nested_se, pooled)


def holm(p_values: list[float]) -> list[float]:
    """Holm's step-down adjustment of a family of p-values (NaN: a question without a test, counted
    in the family and left NaN), in the given order."""
    family = len(p_values)
    order = sorted((p, i) for i, p in enumerate(p_values) if not math.isnan(p))
    adjusted = [math.nan] * family
    running = 0.0
    for rank, (p, i) in enumerate(order):
        running = max(running, min(1.0, (family - rank) * p))
        adjusted[i] = running
    return adjusted

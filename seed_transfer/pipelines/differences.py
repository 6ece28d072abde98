"""Paired differences between two initialisations, with a standard error that includes the
distillation's own noise.

A score of one row is measured on *units* ``(member, finetune_seed)``: ``member`` is the
independent distillation (or random-init seed) that produced the weights, ``finetune_seed``
the detection / segmentation fine-tuning seed (``0`` for classification, whose frozen-feature
protocols are deterministic given the weights). Two rows are paired unit by unit: the same
member index means the same distillation seed (so the same image order and views), the same
fine-tuning seed the same detector initialisation of the new layers and the same batches. A
row measured on one member only (a random init's detection, a fixed checkpoint) is paired
with every member of the other row.

The standard error of the mean difference is the larger of two estimates:

- over units: ``std(d) / sqrt(n)`` of the paired unit differences ``d``;
- over members (when both rows have two or more): the differences averaged over fine-tuning
  seeds per member, then ``std / sqrt(n_members)``. Fine-tuning seeds of one distillation
  share its noise, so this one counts the distillations, not the fine-tunes, as the samples.

A difference counts (:meth:`Difference.significant`) when a two-sided 95% Student-t test over
those samples says so: with two distillations per strategy that takes 12.7 standard errors,
with hundreds of few-shot episodes about 2.

    units_a = {(0, 0): 16.1, (0, 1): 17.0, (1, 0): 15.2, (1, 1): 15.9}
    units_b = {(0, 0): 14.0, (0, 1): 14.8}                  # one member: paired with both
    paired_difference(units_a, units_b)                     # Difference(mean=..., se=..., ...)
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass

from scipy.stats import t as student_t

Unit = tuple[int, int]  # (member, finetune seed)
CONFIDENCE = 0.95  # of the two-sided Student-t test that decides which differences count


def t_threshold(samples: float) -> float:
    """How many standard errors from zero a mean over ``samples`` samples must be to count: the
    two-sided :data:`CONFIDENCE` Student-t critical value for ``samples - 1`` degrees of freedom.
    12.71 for 2 samples, 4.30 for 3, 2.57 for 6; ``math.inf`` samples give the normal quantile
    (1.96), below every finite count's."""
    # float degrees of freedom: a mean near 0 asks about counts beyond any integer dtype scipy takes
    return float(student_t.ppf(1 - (1 - CONFIDENCE) / 2, float(samples) - 1))


@dataclass(frozen=True)
class Difference:
    mean: float  # mean of the paired differences a - b
    se: float  # standard error of that mean (NaN when it cannot be measured: one unit)
    values: list[float]  # the paired differences, in unit order
    units: int  # number of paired units
    members: int  # number of distinct members among them
    se_from: str  # "units", "members", or "not measured"

    @property
    def samples(self) -> int:
        """How many samples the error was estimated over: distillations or paired units."""
        return self.members if self.se_from == "members" else self.units

    def threshold(self, samples: int | None = None) -> float:
        """:func:`t_threshold` of ``samples`` (default: this difference's): an error estimated from
        two distillations is itself so uncertain that two of them prove little."""
        return t_threshold(samples or self.samples)

    def significant(self) -> bool:
        """|mean| beyond :meth:`threshold` standard errors. False when the error is not measured
        (one sample) or is exactly 0: samples that are all equal (e.g. two linear probes of 112
        images that both differ by 4 images) estimate no spread, not a zero one."""
        return not math.isnan(self.se) and self.se > 0 and abs(self.mean) > self.threshold() * self.se

    def samples_needed(self) -> int | None:
        """How many samples of the kind the error was estimated over (``members``: distillations,
        ``units``: paired units) would make this mean :meth:`significant` if the mean and the spread
        stayed as measured: the smallest ``n`` with ``t(n - 1) * spread / sqrt(n) < |mean|``. An
        extrapolation from this run's spread, not a measurement; ``None`` when the error is not
        measured, is 0, or the mean is 0."""
        if math.isnan(self.se) or self.se == 0 or self.mean == 0:
            return None
        spread = self.se * math.sqrt(self.samples)

        def short(n: int) -> bool:  # n samples are too few (falls from True to False as n grows)
            return self.threshold(n) * spread / math.sqrt(n) >= abs(self.mean)

        # every t quantile exceeds the normal one, so this n is still short (or the answer)
        low = max(2, math.floor((t_threshold(math.inf) * spread / abs(self.mean)) ** 2))
        if not short(low):
            return low
        high = 2 * low
        while short(high):
            low, high = high, 2 * high
        while high - low > 1:  # bisection: short(low), not short(high); counts past 1e16 stay exact ints
            mid = (low + high) // 2
            low, high = (mid, high) if short(mid) else (low, mid)
        return high


def _members(units: dict[Unit, float]) -> set[int]:
    return {member for member, _ in units}


def pair_units(a: dict[Unit, float], b: dict[Unit, float]) -> list[tuple[Unit, float, float]]:
    """``(unit, a value, b value)`` for every unit of ``a`` that ``b`` measured, in unit order;
    a row measured on one member is paired with every member of the other."""
    if len(_members(b)) == 1 and len(_members(a)) > 1:
        (only,) = _members(b)
        b = {(member, seed): b[(only, seed)] for member, seed in a if (only, seed) in b}
    elif len(_members(a)) == 1 and len(_members(b)) > 1:
        (only,) = _members(a)
        a = {(member, seed): a[(only, seed)] for member, seed in b if (only, seed) in a}
    return [(unit, a[unit], b[unit]) for unit in sorted(a) if unit in b]


def _se(values: list[float]) -> float:
    return statistics.stdev(values) / math.sqrt(len(values)) if len(values) > 1 else math.nan


def paired_difference(a: dict[Unit, float], b: dict[Unit, float]) -> Difference | None:
    """The mean paired difference ``a - b`` and its standard error (see the module docstring);
    ``None`` when the rows share no unit or a value is missing / NaN."""
    pairs = pair_units(a, b)
    if not pairs or any(v is None or math.isnan(v) for _, x, y in pairs for v in (x, y)):
        return None
    diffs = [x - y for _, x, y in pairs]
    by_member: dict[int, list[float]] = {}
    for (member, _), x, y in pairs:
        by_member.setdefault(member, []).append(x - y)
    se_units = _se(diffs)
    se_members = _se([statistics.fmean(v) for v in by_member.values()]) if len(by_member) > 1 else math.nan
    if math.isnan(se_units) and math.isnan(se_members):
        se, source = math.nan, "not measured"
    elif math.isnan(se_members) or se_units >= se_members:
        se, source = se_units, "units"
    else:
        se, source = se_members, "members"
    return Difference(statistics.fmean(diffs), se, diffs, len(diffs), len(by_member), source)

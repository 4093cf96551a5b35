"""Statistics for A/B splits and holdouts in journey reports: is arm B's conversion rate really
different from arm A's, by how much, and how many more leads would settle it.

Stdlib only (``math`` and ``statistics.NormalDist``): the layer ships to Lambda, where numpy and
scipy would cost tens of megabytes for a handful of normal-distribution formulas.

Every function uses the normal approximation to the binomial, as marketing tools and the usual
calculators do. It is good when each arm has at least a few conversions and a few
non-conversions; with fewer, the report should show the raw counts next to the figures (the
counts are kept in every result for that reason).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from statistics import NormalDist

_NORMAL = NormalDist()


@dataclass(frozen=True)
class Interval:
    """A confidence interval for a difference of rates, ``low <= high``."""

    low: float
    high: float

    def contains(self, value: float) -> bool:
        return self.low <= value <= self.high


@dataclass(frozen=True)
class Comparison:
    """Arm B against arm A (for a holdout: treated against control).

    The figures that need both arms are ``None`` when an arm has no trials yet: nothing is known
    then, and a report must say so rather than show a zero that reads like a measurement.
    """

    successes_a: int
    trials_a: int
    successes_b: int
    trials_b: int
    confidence: float
    rate_a: float | None
    rate_b: float | None
    difference: float | None
    """``rate_b - rate_a``, in absolute terms (0.03 is three percentage points)."""
    interval: Interval | None
    """Wald interval for ``difference`` at ``confidence``, on the unpooled standard error."""
    relative_lift: float | None
    """``rate_b / rate_a - 1``; ``None`` when ``rate_a`` is 0, where no ratio exists."""
    z: float | None
    """The two-proportion z statistic, on the pooled standard error."""
    p_value: float | None
    """Two-sided p-value of ``z``."""
    significant: bool
    """``p_value < 1 - confidence``; always ``False`` while an arm has no trials."""


def compare_proportions(
    successes_a: int,
    trials_a: int,
    successes_b: int,
    trials_b: int,
    confidence: float = 0.95,
) -> Comparison:
    """Compare the conversion rate of arm B with arm A's.

    Two standard errors are used, on purpose:

    - The test (``z``, ``p_value``, ``significant``) asks "could both arms share one rate?", so
      it takes that rate as given: the pooled rate ``(sa + sb) / (na + nb)`` and
      ``se = sqrt(p (1 - p) (1/na + 1/nb))``.
    - The interval describes how large the difference may be, where the arms are not assumed
      equal, so it uses each arm's own rate: ``se = sqrt(pa (1 - pa)/na + pb (1 - pb)/nb)`` and
      ``difference ± z_(1 - (1 - confidence)/2) * se``. Pooling there would use a variance that
      is only right when the difference is zero, the one case the interval is not about.

    The two can therefore disagree at the margin (a p-value just under 0.05 with an interval
    just touching 0); ``significant`` follows the test.

    Degenerate cases, without dividing by zero:

    - An arm with 0 trials: rates that cannot be computed are ``None``, so are the difference,
      interval, lift, ``z`` and p-value, and the result is not significant.
    - Both arms at 0 % or both at 100 % (pooled standard error 0): the difference is exactly 0,
      so ``z = 0`` and ``p = 1`` — no evidence of any difference.
    - Each arm at 0 % or 100 % (unpooled standard error 0): the Wald interval collapses to the
      single point ``[difference, difference]``. That is the known weakness of the Wald
      interval at the edges; the counts are in the result for the report to show beside it.
    """
    _check_confidence(confidence)
    _check_counts(successes_a, trials_a, "arm A")
    _check_counts(successes_b, trials_b, "arm B")
    return _compare(successes_a, trials_a, successes_b, trials_b, confidence)


def holdout_lift(
    treated_successes: int,
    treated_trials: int,
    control_successes: int,
    control_trials: int,
    confidence: float = 0.95,
) -> Comparison:
    """The lift of the leads who went through a journey over the holdout kept out of it.

    The holdout (control) is arm A and the treated group arm B, so ``difference`` is what the
    journey added in absolute terms and ``relative_lift`` the same as a ratio of the control's
    rate; the statistics are those of ``compare_proportions``.
    """
    _check_confidence(confidence)
    _check_counts(treated_successes, treated_trials, "treated group")
    _check_counts(control_successes, control_trials, "control group")
    return _compare(
        control_successes, control_trials, treated_successes, treated_trials, confidence
    )


def sample_size_per_arm(
    baseline_rate: float,
    minimum_detectable_difference: float,
    confidence: float = 0.95,
    power: float = 0.8,
) -> int:
    """Leads needed in each of two equal arms for the two-sided two-proportion z-test at
    ``confidence`` to detect an absolute difference with probability ``power``.

    With ``p1 = baseline_rate``, ``p2 = p1 + minimum_detectable_difference``,
    ``d = p2 - p1``, ``p̄ = (p1 + p2) / 2``, ``z_a = z_(1 - (1 - confidence)/2)`` and
    ``z_b = z_power``::

        n = ceil((z_a * sqrt(2 p̄ (1 - p̄)) + z_b * sqrt(p1 (1 - p1) + p2 (1 - p2)))² / d²)

    The first term uses the pooled variance because that is the variance the test of
    ``compare_proportions`` uses under "no difference"; the second uses the unpooled one because
    under the alternative the arms differ. This is Fleiss's formula without continuity
    correction, the one R's ``power.prop.test`` solves (0.10 → 0.15 at 95 % and 80 %: 686). The
    shorter ``(z_a + z_b)² (p1 q1 + p2 q2) / d²`` (683 there) sizes for an unpooled test, which
    is not the one run here, and comes out slightly low for it.

    The difference may be negative (a drop); its size and the two rates are what count, so both
    rates must lie within [0, 1].
    """
    _check_confidence(confidence)
    _check_power(power)
    if not 0.0 <= baseline_rate <= 1.0:
        raise ValueError(f"baseline_rate must be between 0 and 1, got {baseline_rate}")
    if minimum_detectable_difference == 0.0 or not math.isfinite(minimum_detectable_difference):
        raise ValueError(
            "minimum_detectable_difference must be a non-zero finite difference of rates, "
            f"got {minimum_detectable_difference}"
        )
    other_rate = baseline_rate + minimum_detectable_difference
    if not 0.0 <= other_rate <= 1.0:
        raise ValueError(
            f"baseline_rate {baseline_rate} + minimum_detectable_difference "
            f"{minimum_detectable_difference} = {other_rate} is not a rate between 0 and 1"
        )
    return _sample_size(baseline_rate, other_rate, confidence, power)


def still_needed(
    comparison: Comparison,
    minimum_detectable_difference: float | None = None,
    power: float = 0.8,
) -> int | None:
    """How many more leads each arm needs: ``max(0, required - smaller arm's trials)``.

    ``required`` is ``sample_size_per_arm`` at the comparison's confidence, with arm A's
    current rate as the baseline, for:

    - ``minimum_detectable_difference`` when given — the recommended use: a difference worth
      acting on, chosen before looking, so the answer does not chase the noise;
    - otherwise the observed difference, answering "if this difference is real, how many more
      leads until the test can tell?". Observed differences in small samples tend to be
      overstated, so this answer tends to be optimistic.

    The smaller arm counts because the test is only as sure as its thinner side, and splits fill
    both arms at the same pace.

    ``None`` when no number of leads answers the question: arm A has no trials yet (there is no
    baseline), or no minimum was given and the observed difference is exactly 0.
    """
    if comparison.rate_a is None:
        return None
    if minimum_detectable_difference is None:
        if comparison.rate_b is None or comparison.rate_b == comparison.rate_a:
            return None
        # Sized from the two observed rates themselves (not rate_a + difference, which can land
        # a rounding error outside [0, 1]); both are rates of real counts, so always valid.
        _check_confidence(comparison.confidence)
        _check_power(power)
        required = _sample_size(comparison.rate_a, comparison.rate_b, comparison.confidence, power)
    else:
        required = sample_size_per_arm(
            comparison.rate_a, minimum_detectable_difference, comparison.confidence, power
        )
    return max(0, required - min(comparison.trials_a, comparison.trials_b))


def _compare(
    successes_a: int, trials_a: int, successes_b: int, trials_b: int, confidence: float
) -> Comparison:
    rate_a = successes_a / trials_a if trials_a else None
    rate_b = successes_b / trials_b if trials_b else None
    # What an arm without trials leaves: no difference to speak of, nothing significant.
    undecided = Comparison(
        successes_a=successes_a,
        trials_a=trials_a,
        successes_b=successes_b,
        trials_b=trials_b,
        confidence=confidence,
        rate_a=rate_a,
        rate_b=rate_b,
        difference=None,
        interval=None,
        relative_lift=None,
        z=None,
        p_value=None,
        significant=False,
    )
    if rate_a is None or rate_b is None:
        return undecided

    difference = rate_b - rate_a

    unpooled_se = math.sqrt(rate_a * (1 - rate_a) / trials_a + rate_b * (1 - rate_b) / trials_b)
    half_width = _two_sided_quantile(confidence) * unpooled_se
    interval = Interval(difference - half_width, difference + half_width)

    pooled = (successes_a + successes_b) / (trials_a + trials_b)
    pooled_se = math.sqrt(pooled * (1 - pooled) * (1 / trials_a + 1 / trials_b))
    if pooled_se == 0.0:
        # Only when both arms are all-0 or all-1: the rates are equal, there is nothing to test.
        z, p_value = 0.0, 1.0
    else:
        z = difference / pooled_se
        # P(|Z| > |z|) = erfc(|z| / sqrt 2). Not 2 * NormalDist().cdf(-|z|): that cdf is computed
        # as (1 + erf(x)) / 2, which rounds to 0 beyond |z| of about 8, and a report on large
        # arms should still tell 1e-20 from 1e-80.
        p_value = math.erfc(abs(z) / math.sqrt(2))

    return replace(
        undecided,
        difference=difference,
        interval=interval,
        relative_lift=rate_b / rate_a - 1 if rate_a > 0 else None,
        z=z,
        p_value=p_value,
        significant=p_value < 1 - confidence,
    )


def _sample_size(rate_1: float, rate_2: float, confidence: float, power: float) -> int:
    mean_rate = (rate_1 + rate_2) / 2
    under_null = _two_sided_quantile(confidence) * math.sqrt(2 * mean_rate * (1 - mean_rate))
    under_alternative = _NORMAL.inv_cdf(power) * math.sqrt(
        rate_1 * (1 - rate_1) + rate_2 * (1 - rate_2)
    )
    return math.ceil((under_null + under_alternative) ** 2 / (rate_2 - rate_1) ** 2)


def _two_sided_quantile(confidence: float) -> float:
    return _NORMAL.inv_cdf(1 - (1 - confidence) / 2)


def _check_confidence(confidence: float) -> None:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be between 0 and 1 (exclusive), got {confidence}")


def _check_power(power: float) -> None:
    if not 0.0 < power < 1.0:
        raise ValueError(f"power must be between 0 and 1 (exclusive), got {power}")


def _check_counts(successes: int, trials: int, arm: str) -> None:
    if trials < 0:
        raise ValueError(f"{arm}: trials must not be negative, got {trials}")
    if successes < 0:
        raise ValueError(f"{arm}: successes must not be negative, got {successes}")
    if successes > trials:
        raise ValueError(f"{arm}: successes ({successes}) must not exceed trials ({trials})")

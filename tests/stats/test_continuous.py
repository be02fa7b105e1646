"""Welch's t-test against scipy; CUPED's theta and variance reduction on simulated data."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats

from modelpilot import errors
from modelpilot.stats import continuous


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_welch_equals_scipy_ttest_ind_with_unequal_variances(seed: int) -> None:
    rng = np.random.default_rng(seed)
    a = rng.normal(10, 2, size=40 + seed * 17)
    b = rng.normal(10.8, 5, size=90 - seed * 11)
    result = continuous.welch_ttest(a, b)
    expected = scipy.stats.ttest_ind(b, a, equal_var=False)
    assert result.statistic == pytest.approx(expected.statistic, rel=1e-12)
    assert result.p_value == pytest.approx(expected.pvalue, rel=1e-9)
    assert result.df == pytest.approx(expected.df, rel=1e-12)
    ci = expected.confidence_interval(0.95)
    assert (result.ci_low, result.ci_high) == pytest.approx((ci.low, ci.high), rel=1e-9)


def test_cuped_theta_is_the_regression_slope_and_removes_rho_squared_of_the_variance() -> None:
    rng = np.random.default_rng(42)
    n = 20_000
    pre = rng.normal(100, 20, size=2 * n)
    # Post-period metric correlated with the pre-period one (rho = 0.8), plus a small effect.
    post = 0.8 * (pre - 100) + rng.normal(0, 12, size=2 * n) + 100
    post[n:] += 0.5
    result = continuous.cuped(
        control=post[:n], control_covariate=pre[:n], treatment=post[n:], treatment_covariate=pre[n:]
    )
    slope = scipy.stats.linregress(pre, post).slope
    assert result.theta == pytest.approx(slope, rel=1e-9)
    rho = np.corrcoef(pre, post)[0, 1]
    assert result.variance_reduction == pytest.approx(rho**2, abs=0.01)
    assert result.variance_reduction > 0.5
    # Same estimate of the effect, smaller standard error, so a smaller p-value.
    assert result.adjusted.difference == pytest.approx(result.unadjusted.difference, abs=0.1)
    assert result.adjusted.ci_high - result.adjusted.ci_low < 0.75 * (
        result.unadjusted.ci_high - result.unadjusted.ci_low
    )
    assert result.adjusted.p_value < result.unadjusted.p_value


def test_cuped_keeps_aa_false_positives_at_the_nominal_rate() -> None:
    rng = np.random.default_rng(8)
    runs, n = 2000, 200
    pre = rng.normal(0, 1, size=(runs, 2, n))
    post = 0.7 * pre + rng.normal(0, 0.7, size=(runs, 2, n))
    rejections = sum(
        continuous.cuped(
            control=post[i, 0],
            control_covariate=pre[i, 0],
            treatment=post[i, 1],
            treatment_covariate=pre[i, 1],
        ).adjusted.significant
        for i in range(runs)
    )
    assert 0.035 <= rejections / runs <= 0.065


def test_welch_rejects_a_sample_of_one() -> None:
    with pytest.raises(errors.InputError, match="control: need at least 2 values"):
        continuous.welch_ttest([1.0], [1.0, 2.0])

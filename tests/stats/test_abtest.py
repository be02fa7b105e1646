"""A/B statistics against closed forms, statsmodels and scipy, plus a seeded A/A simulation."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.stats
from statsmodels.stats import power as sm_power
from statsmodels.stats import proportion as sm_proportion

from modelpilot import errors
from modelpilot.stats import abtest


def miller_closed_form(p: float, delta: float, alpha: float, power: float) -> float:
    """Evan Miller's calculator, written out independently from its published formula."""
    t_alpha2 = scipy.stats.norm.ppf(1 - alpha / 2)
    t_beta = scipy.stats.norm.ppf(power)
    sd1 = math.sqrt(2 * p * (1 - p))
    sd2 = math.sqrt(p * (1 - p) + (p + delta) * (1 - p - delta))
    return (t_alpha2 * sd1 + t_beta * sd2) ** 2 / delta**2


@pytest.mark.parametrize(
    ("p", "mde", "alpha", "power"),
    [
        (0.10, 0.02, 0.05, 0.8),
        (0.03, 0.005, 0.01, 0.9),
        (0.5, 0.1, 0.1, 0.8),
        (0.9, -0.0 + 0.05, 0.05, 0.95),
    ],
)
def test_unpooled_sample_size_equals_evan_millers_closed_form(
    p: float, mde: float, alpha: float, power: float
) -> None:
    result = abtest.sample_size(baseline_rate=p, mde=mde, alpha=alpha, power=power)
    expected = miller_closed_form(p, mde, alpha, power)
    assert result.n_control_exact == pytest.approx(expected, rel=1e-12)
    assert result.n_control == math.ceil(expected)
    assert result.n_treatment == result.n_control
    assert result.total == 2 * result.n_control


def guide_pooled_formula(p: float, mde: float, alpha: float, power: float) -> float:
    """The seed guide's `calculate_sample_size`, written out (before its ceil)."""
    z_alpha = scipy.stats.norm.ppf(1 - alpha / 2)
    z_beta = scipy.stats.norm.ppf(power)
    p_pooled = (p + p + mde) / 2
    return 2 * p_pooled * (1 - p_pooled) * (z_alpha + z_beta) ** 2 / mde**2


@pytest.mark.parametrize(
    ("p", "mde", "alpha", "power"),
    [(0.10, 0.02, 0.05, 0.8), (0.03, 0.005, 0.01, 0.9), (0.5, 0.1, 0.1, 0.8)],
)
def test_pooled_sample_size_equals_the_guides_formula(
    p: float, mde: float, alpha: float, power: float
) -> None:
    result = abtest.sample_size(baseline_rate=p, mde=mde, alpha=alpha, power=power, method="pooled")
    assert result.n_control_exact == pytest.approx(
        guide_pooled_formula(p, mde, alpha, power), rel=1e-12
    )


def test_the_three_methods_give_the_calculators_numbers_for_ten_to_twelve_percent() -> None:
    n = {
        m: abtest.sample_size(baseline_rate=0.10, mde=0.02, method=m).n_control
        for m in abtest.METHODS
    }
    assert n == {"unpooled": 3623, "pooled": 3843, "arcsine": 3835}


def test_pooled_sample_size_with_unequal_allocation_weights_the_average_rate() -> None:
    # r = 2: p_bar = (0.1 + 2 x 0.12) / 3, variance factor (1 + 1/2).
    result = abtest.sample_size(baseline_rate=0.10, mde=0.02, ratio=2.0, method="pooled")
    p_bar = (0.10 + 2 * 0.12) / 3
    z = scipy.stats.norm.ppf(0.975) + scipy.stats.norm.ppf(0.8)
    assert result.n_control_exact == pytest.approx(
        z**2 * p_bar * (1 - p_bar) * 1.5 / 0.02**2, rel=1e-12
    )
    assert result.n_treatment == math.ceil(2 * result.n_control_exact - 1e-9)


def test_relative_mde_is_a_fraction_of_the_baseline() -> None:
    rel = abtest.sample_size(baseline_rate=0.10, mde=0.2, relative=True)
    absolute = abtest.sample_size(baseline_rate=0.10, mde=0.02)
    assert rel.treatment_rate == pytest.approx(0.12)
    assert rel.n_control_exact == pytest.approx(absolute.n_control_exact, rel=1e-9)


@pytest.mark.parametrize("ratio", [1.0, 2.0, 0.5, 3.0])
@pytest.mark.parametrize(("p", "mde"), [(0.10, 0.02), (0.25, -0.0 + 0.04), (0.02, 0.01)])
def test_arcsine_sample_size_equals_statsmodels_normal_ind_power(
    p: float, mde: float, ratio: float
) -> None:
    result = abtest.sample_size(baseline_rate=p, mde=mde, ratio=ratio, method="arcsine")
    h = sm_proportion.proportion_effectsize(p + mde, p)
    expected = sm_power.NormalIndPower().solve_power(
        effect_size=h, alpha=0.05, power=0.8, ratio=ratio, alternative="two-sided"
    )
    assert result.n_control_exact == pytest.approx(expected, rel=1e-6)
    assert result.n_treatment == math.ceil(result.n_control_exact * ratio - 1e-9)


def test_unequal_allocation_reduces_to_millers_formula_at_ratio_one_and_grows_otherwise() -> None:
    even = abtest.sample_size(baseline_rate=0.1, mde=0.02, ratio=1.0)
    uneven = abtest.sample_size(baseline_rate=0.1, mde=0.02, ratio=3.0)
    assert uneven.total > even.total
    # With r = n_t / n_c the control arm needs fewer than 2x but more than (1+1/r)/2 of the even n.
    assert uneven.n_control < even.n_control


@pytest.mark.parametrize(
    ("counts", "nobs"),
    [
        ((100, 130), (1000, 1000)),
        ((5, 9), (40, 55)),
        ((480, 500), (10000, 9900)),
        ((0, 3), (50, 50)),
    ],
)
def test_ztest_p_value_equals_statsmodels_proportions_ztest(
    counts: tuple[int, int], nobs: tuple[int, int]
) -> None:
    result = abtest.two_proportion_ztest(
        control_successes=counts[0],
        control_total=nobs[0],
        treatment_successes=counts[1],
        treatment_total=nobs[1],
    )
    z, p = sm_proportion.proportions_ztest([counts[1], counts[0]], [nobs[1], nobs[0]])
    assert result.z == pytest.approx(z, abs=1e-9)
    assert result.p_value == pytest.approx(p, abs=1e-9)


def test_ztest_reports_lift_and_the_wald_interval_of_the_difference() -> None:
    r = abtest.two_proportion_ztest(
        control_successes=100, control_total=1000, treatment_successes=130, treatment_total=1000
    )
    assert r.control_rate == 0.1
    assert r.treatment_rate == 0.13
    assert r.absolute_lift == pytest.approx(0.03)
    assert r.relative_lift == pytest.approx(0.3)
    se = math.sqrt(0.1 * 0.9 / 1000 + 0.13 * 0.87 / 1000)
    low, high = sm_proportion.confint_proportions_2indep(
        130, 1000, 100, 1000, method="wald", compare="diff"
    )
    assert r.ci_low == pytest.approx(0.03 - 1.959963984540054 * se, abs=1e-12)
    assert (r.ci_low, r.ci_high) == pytest.approx((low, high), abs=1e-12)
    assert r.significant is True


def test_aa_tests_reject_at_the_nominal_rate_over_4000_seeded_runs() -> None:
    rng = np.random.default_rng(20240501)
    runs, n, p = 4000, 2000, 0.1
    c = rng.binomial(n, p, size=runs)
    t = rng.binomial(n, p, size=runs)
    rejections = sum(
        abtest.two_proportion_ztest(
            control_successes=int(ci),
            control_total=n,
            treatment_successes=int(ti),
            treatment_total=n,
        ).significant
        for ci, ti in zip(c, t, strict=True)
    )
    rate = rejections / runs
    assert 0.035 <= rate <= 0.065


@pytest.mark.parametrize(
    ("counts", "ratios"),
    [([5000, 5200], None), ([5000, 5200], [1, 1]), ([100, 230, 170], [1, 2, 2])],
)
def test_srm_equals_scipy_chisquare(counts: list[int], ratios: list[float] | None) -> None:
    result = abtest.srm_test(counts, ratios)
    r = np.ones(len(counts)) if ratios is None else np.asarray(ratios, float)
    expected = scipy.stats.chisquare(counts, f_exp=np.sum(counts) * r / r.sum())
    assert result.chi2 == pytest.approx(expected.statistic, rel=1e-12)
    assert result.p_value == pytest.approx(expected.pvalue, rel=1e-9, abs=1e-300)


def test_srm_flags_a_clear_mismatch_and_not_a_balanced_split() -> None:
    assert abtest.srm_test([5000, 5600]).mismatch is True
    assert abtest.srm_test([5000, 5020]).mismatch is False


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"baseline_rate": 1.2, "mde": 0.02},
            "baseline rate must be a rate strictly between 0 and 1",
        ),
        ({"baseline_rate": 0.0, "mde": 0.02}, "baseline rate"),
        ({"baseline_rate": 0.1, "mde": 0.0}, "mde must be > 0"),
        ({"baseline_rate": 0.1, "mde": -0.01}, "mde must be > 0"),
        ({"baseline_rate": 0.95, "mde": 0.1}, "outside (0, 1)"),
        ({"baseline_rate": 0.1, "mde": 0.02, "alpha": 1.5}, "alpha"),
        ({"baseline_rate": 0.1, "mde": 0.02, "ratio": 0}, "ratio"),
    ],
)
def test_bad_sample_size_input_names_the_field(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(errors.InputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        abtest.sample_size(**kwargs)  # type: ignore[arg-type]


def test_srm_rejects_mismatched_counts_and_ratios() -> None:
    with pytest.raises(errors.InputError, match="ratios: 3 given for 2 counts"):
        abtest.srm_test([10, 20], [1, 1, 1])


def test_ztest_rejects_more_successes_than_trials() -> None:
    with pytest.raises(errors.InputError, match="control: successes must be between 0"):
        abtest.two_proportion_ztest(
            control_successes=11, control_total=10, treatment_successes=1, treatment_total=10
        )

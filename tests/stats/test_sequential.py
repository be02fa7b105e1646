"""mSPRT always-valid p-values: the closed form, and seeded peeking simulations."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.stats
from statsmodels.stats import proportion as sm_proportion

from modelpilot.stats import sequential

LOOK_EVERY, MAX_PER_ARM, RUNS, RATE = 100, 10_000, 2_000, 0.10


def test_equal_arms_match_the_papers_two_sample_formula() -> None:
    # Johari et al. (2017):
    # Lambda = sqrt(2s2/(2s2 + n tau2)) exp(n^2 tau2 d^2 / (4 s2 (2s2 + n tau2)))
    n, sc, st, tau2 = 5000, 500, 560, 1e-4
    pbar = (sc + st) / (2 * n)
    s2 = pbar * (1 - pbar)
    d = st / n - sc / n
    expected = 0.5 * math.log(2 * s2 / (2 * s2 + n * tau2)) + n**2 * tau2 * d**2 / (
        4 * s2 * (2 * s2 + n * tau2)
    )
    got = sequential.msprt_log_likelihood_ratio(
        control_successes=sc,
        control_totals=n,
        treatment_successes=st,
        treatment_totals=n,
        mixing_variance=tau2,
    )
    assert float(got) == pytest.approx(expected, rel=1e-12)


def _peeking_streams(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    looks = MAX_PER_ARM // LOOK_EVERY
    control = rng.binomial(LOOK_EVERY, RATE, size=(RUNS, looks)).cumsum(axis=1)
    treatment = rng.binomial(LOOK_EVERY, RATE, size=(RUNS, looks)).cumsum(axis=1)
    totals = np.arange(1, looks + 1) * LOOK_EVERY
    return control, treatment, totals


def test_peeking_every_100_per_arm_inflates_the_naive_ztest_but_not_the_msprt() -> None:
    control, treatment, totals = _peeking_streams(np.random.default_rng(11))
    totals_2d = np.broadcast_to(totals, control.shape)

    # Naive: the pooled two-proportion z-test at every look, stopping at the first p < 0.05. It is
    # vectorised here; a sample of looks is checked against statsmodels (the oracle) below.
    pooled = (control + treatment) / (2 * totals_2d)
    se = np.sqrt(pooled * (1 - pooled) * 2 / totals_2d)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(se > 0, (treatment - control) / totals_2d / se, 0.0)
    naive_p = 2 * scipy.stats.norm.sf(np.abs(z))
    for run, look in [(0, 0), (5, 17), (123, 99), (1999, 50)]:
        _, oracle = sm_proportion.proportions_ztest(
            [treatment[run, look], control[run, look]], [totals[look], totals[look]]
        )
        assert naive_p[run, look] == pytest.approx(oracle, abs=1e-12)
    naive_fpr = float(np.mean((naive_p < 0.05).any(axis=1)))

    always_valid = sequential.always_valid_pvalues(
        control_successes=control,
        control_totals=totals_2d,
        treatment_successes=treatment,
        treatment_totals=totals_2d,
    )
    msprt_fpr = float(np.mean((always_valid < 0.05).any(axis=1)))

    assert naive_fpr > 0.15
    assert msprt_fpr <= 0.05


def test_always_valid_p_values_never_increase_and_start_at_most_one() -> None:
    control, treatment, totals = _peeking_streams(np.random.default_rng(3))
    p = sequential.always_valid_pvalues(
        control_successes=control[:20],
        control_totals=totals,
        treatment_successes=treatment[:20],
        treatment_totals=totals,
    )
    assert np.all(p <= 1.0)
    assert np.all(np.diff(p, axis=1) <= 0)


def test_a_real_lift_is_detected_by_the_msprt_in_most_runs() -> None:
    rng = np.random.default_rng(5)
    looks = MAX_PER_ARM // LOOK_EVERY
    control = rng.binomial(LOOK_EVERY, 0.10, size=(500, looks)).cumsum(axis=1)
    treatment = rng.binomial(LOOK_EVERY, 0.12, size=(500, looks)).cumsum(axis=1)
    totals = np.arange(1, looks + 1) * LOOK_EVERY
    p = sequential.always_valid_pvalues(
        control_successes=control,
        control_totals=totals,
        treatment_successes=treatment,
        treatment_totals=totals,
    )
    assert float(np.mean(p[:, -1] < 0.05)) > 0.8

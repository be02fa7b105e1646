"""The Experiment's per-variant posteriors against closed forms computed here from raw rewards.

Continuous rewards: the conjugate Normal update with the observation variance plugged in from the
sample variance (numpy on the raw rewards), in the limit of a flat prior on the mean; probability
to be best of two arms against Phi((m1 - m2) / sqrt(v1 + v2)) (scipy).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps

from modelpilot.operator.experiment import posterior
from modelpilot.stats import bandits


def _conjugate(x: np.ndarray, *, prior_mean: float, prior_variance: float) -> tuple[float, float]:
    """Normal prior N(prior_mean, prior_variance) on the mean, Normal observations with the
    variance known and equal to the sample variance (ddof=1): (posterior mean, variance)."""
    noise = float(np.var(x, ddof=1))
    precision = 1.0 / prior_variance + len(x) / noise
    return (prior_mean / prior_variance + float(np.sum(x)) / noise) / precision, 1.0 / precision


def _posterior(x: np.ndarray) -> dict[str, float]:
    """The continuous posterior after the rewards `x`, all reported with their squares."""
    return posterior.update(
        "continuous", rewards=len(x), reward_sum=float(np.sum(x)), reward_sum_squares=float(x @ x)
    )


@pytest.mark.parametrize(
    ("mean", "sd", "n"),
    [
        (100.0, 20.0, 500),  # revenue in dollars
        (0.010, 0.002, 500),  # a score in [0, 0.01]
        (-4.0, 3.0, 37),  # a profit that is mostly a loss
        (250.0, 1e4, 80),  # revenue in cents: a fixed N(0, 1e6) prior would shrink this mean
        (1.0, 1.0, 2),  # the fewest rewards with a variance
    ],
)
def test_the_continuous_posterior_is_the_conjugate_normal_update_with_the_sample_variance(
    mean: float, sd: float, n: int
) -> None:
    x = np.random.default_rng(n).normal(mean, sd, size=n)
    got = _posterior(x)

    # Flat prior on the mean: the conjugate update's limit, the sample mean and s^2 / n.
    assert got["mean"] == pytest.approx(np.mean(x), rel=1e-9)
    assert got["variance"] == pytest.approx(np.var(x, ddof=1) / n, rel=1e-9)
    # ... which the conjugate update with an ever wider prior converges to ...
    limit = _conjugate(x, prior_mean=0.0, prior_variance=1e12 * (mean * mean + sd * sd))
    assert (got["mean"], got["variance"]) == pytest.approx(limit, rel=1e-6)
    # ... and so does modelpilot.stats.bandits.gaussian_posterior, given such a prior.
    lib = bandits.gaussian_posterior(
        [n], [np.sum(x)], [x @ x], prior_variance=1e12 * (mean * mean + sd * sd)
    )
    assert (got["mean"], got["variance"]) == pytest.approx((lib.mean[0], lib.variance[0]), rel=1e-6)


def test_the_posterior_does_not_depend_on_the_unit_of_the_reward() -> None:
    x = np.random.default_rng(5).normal(3.0, 2.0, size=200)
    dollars = _posterior(x)
    cents = _posterior(100 * x)
    assert cents["mean"] == pytest.approx(100 * dollars["mean"], rel=1e-9)
    assert cents["variance"] == pytest.approx(100**2 * dollars["variance"], rel=1e-9)
    # Whereas bandits.gaussian_posterior's default N(0, 1e6) prior pulls 1e4-scale rewards to 0.
    y = np.random.default_rng(6).normal(250.0, 1e4, size=100)
    default_prior = bandits.gaussian_posterior([100], [np.sum(y)], [y @ y])
    assert abs(default_prior.mean[0]) < 0.7 * abs(np.mean(y))
    flat = _posterior(y)
    assert flat["mean"] == pytest.approx(np.mean(y), rel=1e-9)


@pytest.mark.parametrize(
    ("m1", "m2", "sd", "n1", "n2"), [(100, 101.5, 20, 400, 300), (0.01, 0.01015, 0.002, 300, 250)]
)
def test_p_best_of_two_continuous_arms_is_the_normal_closed_form(
    m1: float, m2: float, sd: float, n1: int, n2: int
) -> None:
    rng = np.random.default_rng(17)
    a, b = rng.normal(m1, sd, size=n1), rng.normal(m2, sd, size=n2)
    pa = _posterior(a)
    pb = _posterior(b)
    got = posterior.probability_to_be_best(
        "continuous", [pa, pb], draws=200_000, rng=np.random.default_rng(3)
    )
    ma, mb = np.mean(a), np.mean(b)
    va, vb = np.var(a, ddof=1) / n1, np.var(b, ddof=1) / n2
    oracle = sps.norm.cdf((mb - ma) / math.sqrt(va + vb))
    assert 0.02 < oracle < 0.98  # a case where the variance decides the answer
    # 200,000 draws: the Monte Carlo standard error is at most 0.0012.
    assert got[1] == pytest.approx(oracle, abs=0.005)
    assert got[0] + got[1] == pytest.approx(1.0)


@pytest.mark.parametrize(
    "rewards",
    [[], [42.0], [0.0] * 50, [7.5] * 3],
    ids=["none", "one", "fifty-zeros", "three-equal"],
)
def test_an_unknown_variance_gives_a_vague_posterior_that_decides_nothing(
    rewards: list[float],
) -> None:
    x = np.asarray(rewards, dtype=float)
    vague = _posterior(x)
    m = float(np.mean(x)) if len(x) else 0.0
    assert vague == {"mean": m, "variance": posterior.VAGUE_VARIANCE * max(1.0, m * m)}
    # Against an arm measured precisely at any nearby mean, P(best) is about even.
    y = np.random.default_rng(1).normal(m + 1.0, 1.0, size=1000)
    sharp = _posterior(y)
    p = posterior.probability_to_be_best(
        "continuous", [vague, sharp], draws=20_000, rng=np.random.default_rng(2)
    )
    assert p[0] == pytest.approx(0.5, abs=0.02)


def test_the_prior_of_a_continuous_experiment_is_vague_and_of_a_binary_one_beta_1_1() -> None:
    assert posterior.prior("continuous") == {"mean": 0.0, "variance": posterior.VAGUE_VARIANCE}
    assert posterior.prior("binary") == {"alpha": 1.0, "beta": 1.0}


def test_rewards_without_squares_keep_the_previous_unit_variance_posterior() -> None:
    # Routers that report no sum of squares: exactly the previous version's N(0, 1) prior with unit
    # observation variance.
    got = posterior.update(
        "continuous",
        rewards=399,
        reward_sum=199.5,
        unsquared_rewards=399,
        unsquared_reward_sum=199.5,
    )
    assert got == {"mean": 199.5 / 400, "variance": 1 / 400}


def test_the_variance_comes_only_from_the_rewards_that_have_squares_the_mean_from_all() -> None:
    rng = np.random.default_rng(23)
    before = rng.normal(100.0, 20.0, size=500)  # counted by a version before sums of squares
    after = rng.normal(100.0, 20.0, size=120)  # reported with squares
    everything = np.concatenate([before, after])
    got = posterior.update(
        "continuous",
        rewards=len(everything),
        reward_sum=float(np.sum(everything)),
        reward_sum_squares=float(after @ after),
        unsquared_rewards=len(before),
        unsquared_reward_sum=float(np.sum(before)),
    )
    assert got["mean"] == pytest.approx(np.mean(everything), rel=1e-9)
    assert got["variance"] == pytest.approx(np.var(after, ddof=1) / len(everything), rel=1e-9)
    # Treating the missing squares as 0 would have made the "variance" negative.
    s, n = float(np.sum(everything)), len(everything)
    assert (float(after @ after) - s * s / n) / (n - 1) < 0


def test_binary_posteriors_ignore_sums_of_squares() -> None:
    plain = posterior.update("binary", rewards=1000, reward_sum=137.0)
    assert plain == {"alpha": 138.0, "beta": 864.0}
    assert (
        posterior.update("binary", rewards=1000, reward_sum=137.0, reward_sum_squares=137.0)
        == plain
    )

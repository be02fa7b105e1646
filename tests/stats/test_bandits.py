"""Bandit posteriors, probability to be best and bounded integer weights."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.integrate
import scipy.stats

from modelpilot import errors
from modelpilot.stats import bandits


def test_beta_posterior_adds_successes_and_failures_to_a_uniform_prior() -> None:
    a, b = bandits.beta_posterior([3, 0], [7, 2])
    assert a.tolist() == [4.0, 1.0]
    assert b.tolist() == [8.0, 3.0]


def test_probability_to_be_best_matches_numerical_integration_for_two_arms() -> None:
    # P(X2 > X1) = integral of f2(x) F1(x) dx for independent Beta posteriors.
    a, b = np.array([21.0, 31.0]), np.array([181.0, 171.0])
    exact, _ = scipy.integrate.quad(
        lambda x: scipy.stats.beta.pdf(x, a[1], b[1]) * scipy.stats.beta.cdf(x, a[0], b[0]), 0, 1
    )
    p = bandits.probability_to_be_best(a, b, draws=200_000, rng=np.random.default_rng(1))
    assert p.sum() == pytest.approx(1.0)
    assert p[1] == pytest.approx(exact, abs=4 * np.sqrt(exact * (1 - exact) / 200_000))


def test_gaussian_probability_to_be_best_matches_the_normal_closed_form() -> None:
    m, v = np.array([1.0, 1.1]), np.array([0.01, 0.02])
    exact = scipy.stats.norm.cdf((m[1] - m[0]) / np.sqrt(v.sum()))
    p = bandits.probability_to_be_best_gaussian(m, v, draws=200_000, rng=np.random.default_rng(2))
    assert p[1] == pytest.approx(exact, abs=4 * np.sqrt(exact * (1 - exact) / 200_000))


def test_gaussian_posterior_with_a_flat_prior_is_the_sample_mean_over_n() -> None:
    rng = np.random.default_rng(3)
    x = rng.normal(2.0, 3.0, size=400)
    post = bandits.gaussian_posterior([400, 0], [x.sum(), 0.0], [(x**2).sum(), 0.0])
    assert post.mean[0] == pytest.approx(x.mean(), rel=1e-6)
    assert post.variance[0] == pytest.approx(x.var(ddof=1) / 400, rel=1e-6)
    assert post.mean[1] == pytest.approx(0.0)
    assert post.variance[1] == pytest.approx(1e6, rel=1e-9)


def test_thompson_weights_are_shares_that_favour_the_better_posterior() -> None:
    w = bandits.thompson_weights([120, 150], [880, 850], draws=20_000, rng=np.random.default_rng(4))
    assert w.sum() == pytest.approx(1.0)
    assert w[1] > 0.9


@pytest.mark.parametrize(
    ("shares", "floor", "ceiling", "expected"),
    [
        ([0.97, 0.02, 0.01], 5, 90, [90, 5, 5]),
        ([0.2, 0.3, 0.5], 0, 100, [20, 30, 50]),
        ([1 / 3, 1 / 3, 1 / 3], 0, 100, [34, 33, 33]),
        ([0.5, 0.5], 10, 60, [50, 50]),
        ([0.999, 0.001], 5, 100, [95, 5]),
    ],
)
def test_bounded_weights_known_splits(
    shares: list[float], floor: int, ceiling: int, expected: list[int]
) -> None:
    assert bandits.bounded_weights(shares, floor=floor, ceiling=ceiling) == expected


def test_bounded_weights_always_sum_to_100_within_bounds_on_random_shares() -> None:
    rng = np.random.default_rng(5)
    for _ in range(1000):
        n = int(rng.integers(2, 7))
        floor = int(rng.integers(0, 100 // n + 1))
        ceiling = int(rng.integers(max(floor, -(-100 // n)), 101))
        shares = rng.dirichlet(np.full(n, 0.3))
        w = bandits.bounded_weights(shares, floor=floor, ceiling=ceiling)
        assert sum(w) == 100
        assert all(floor <= x <= ceiling for x in w)
        # Within one point of the continuous projection's target when the bounds do not bind.
        if floor == 0 and ceiling == 100:
            assert np.all(np.abs(np.array(w) - 100 * shares) < 1.0)


@pytest.mark.parametrize(("floor", "ceiling"), [(40, 90), (0, 30), (60, 50), (-1, 50)])
def test_bounded_weights_explains_infeasible_bounds(floor: int, ceiling: int) -> None:
    with pytest.raises(errors.InputError, match="weight bounds"):
        bandits.bounded_weights([0.3, 0.3, 0.4], floor=floor, ceiling=ceiling)


def test_epsilon_greedy_weights_spread_epsilon_and_give_the_rest_to_the_leader() -> None:
    w = bandits.epsilon_greedy_weights([0.1, 0.3, 0.2], epsilon=0.1)
    assert w.tolist() == pytest.approx([0.1 / 3, 0.9 + 0.1 / 3, 0.1 / 3])


def test_ucb1_scores_are_mean_plus_the_exploration_bonus() -> None:
    scores = bandits.ucb1_scores([10, 30, 0], [2, 9, 0])
    t = 40
    assert scores[0] == pytest.approx(0.2 + np.sqrt(2 * np.log(t) / 10))
    assert scores[1] == pytest.approx(0.3 + np.sqrt(2 * np.log(t) / 30))
    assert scores[2] == np.inf

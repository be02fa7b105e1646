"""Per-variant posteriors in the routes ConfigMap format, and probability to be best among them.

Binary rewards: Beta(1 + successes, 1 + failures) where the observations are the *joined feedback*
(`rewards` = how many rewards arrived, `rewardSum` = how many were 1), not the requests: with
delayed rewards, a request whose feedback has not arrived yet is unknown, not a failure, so counting
it as one would bias every variant that grows fast (the challenger Thompson is favouring) downwards.

Continuous rewards: the posterior of the variant's mean reward mu is Normal, the conjugate update
with the observation variance plugged in from the data (`bandits.gaussian_posterior`'s model): with
n rewards summing to S, and the sample variance s^2 = (Q - S_q^2 / n_q) / (n_q - 1) of the n_q of
them whose sum of squares Q the routers reported (S_q their sum),

    mu | data ~ N(S / n, s^2 / n).

The one design decision is the prior, chosen so that the posterior does not depend on the unit of
the reward (dollars or cents, milliseconds or seconds, a score in [0, 0.01]):

- on the mean, the flat (improper) prior: the limit of a N(m0, t^2) prior as t^2 -> infinity, so
  the posterior is the textbook mean +- standard error. Any proper prior of fixed width has a
  scale: `bandits.gaussian_posterior`'s default N(0, 1e6) is flat for rewards of order 1, but for a
  reward with standard deviation 1e4 (revenue in cents) and n = 100 its precision 1e-6 equals the
  data's 100 / 1e8, and it would pull the mean halfway to 0.
- on the variance, none: before two rewards with their squares (or while every reward so far is the
  same, as a revenue of 0 on the first requests) the variance is *unknown*, and so is the precision
  of the mean. The posterior is then vague: the mean of the rewards so far (0 with none) with a
  variance of 1e12 x max(1, mean^2), a standard deviation a million times the rewards' own scale,
  so that P(best) against any variant with data is about even: Thompson keeps sending it traffic
  and nothing is promoted on it. A unit variance (the previous rule, and `gaussian_posterior`'s
  `default_noise_variance`) would claim a precision the data do not have: for revenue in dollars
  one reward would look like a measurement to +-1.
- rewards counted without their squares (`unsquared_rewards`: from routers of a version before
  sums of squares, or from an Experiment status written by the previous operator) enter the mean
  but not the variance. While fewer than two rewards have squares and some have none, the
  posterior is the previous version's, unchanged: a N(0, 1) prior and unit observation variance,
  mean = S / (n + 1), variance = 1 / (n + 1), which assumes rewards scaled to about unit variance.
  An experiment on such routers goes on deciding exactly as before, and one that started under the
  previous operator switches to the estimated variance as soon as two rewards come with squares.

The plug-in variance ignores the uncertainty of s^2 itself (the exact posterior with an unknown
variance is a Student t with n - 1 degrees of freedom), which matters only for small n: decisions
wait for `minSamplesPerVariant` rewards per variant anyway. Q - S^2 / n loses precision when the
mean is very large against the standard deviation (|mean| / sd beyond about 1e5), as any
sum-of-squares estimate does.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from modelpilot.stats import bandits

VAGUE_VARIANCE = 1e12
"""An unknown variance's stand-in, times max(1, mean^2): see the module docstring."""


def prior(reward_type: str) -> dict[str, float]:
    return update(reward_type, rewards=0, reward_sum=0.0)


def noise_variance(rewards: int, reward_sum: float, reward_sum_squares: float) -> float | None:
    """The sample variance (n - 1 denominator) of `rewards` values with the given sum and sum of
    squares; None when it is unknown: fewer than two values, or no spread among them."""
    if rewards < 2:
        return None
    variance = (reward_sum_squares - reward_sum * reward_sum / rewards) / (rewards - 1)
    # Below 1e-12 of the mean square the difference is rounding, not spread.
    if not variance > 1e-12 * reward_sum_squares / rewards:
        return None
    return variance


def update(
    reward_type: str,
    *,
    rewards: int,
    reward_sum: float,
    reward_sum_squares: float = 0.0,
    unsquared_rewards: int = 0,
    unsquared_reward_sum: float = 0.0,
) -> dict[str, float]:
    """The posterior after `rewards` observations summing to `reward_sum`, of which
    `unsquared_rewards` (summing to `unsquared_reward_sum`) came without their squares and the
    others have squares summing to `reward_sum_squares` (continuous rewards only)."""
    if reward_type == "binary":
        successes = min(max(reward_sum, 0.0), float(rewards))
        return {"alpha": 1.0 + successes, "beta": 1.0 + rewards - successes}
    n = float(rewards)
    variance = noise_variance(
        rewards - unsquared_rewards, reward_sum - unsquared_reward_sum, reward_sum_squares
    )
    if variance is not None:
        return {"mean": reward_sum / n, "variance": variance / n}
    if unsquared_rewards > 0:
        return {"mean": reward_sum / (n + 1.0), "variance": 1.0 / (n + 1.0)}
    mean = reward_sum / n if rewards > 0 else 0.0
    return {"mean": mean, "variance": VAGUE_VARIANCE * max(1.0, mean * mean)}


def mean(post: Mapping[str, float]) -> float:
    if "alpha" in post:
        return round(post["alpha"] / (post["alpha"] + post["beta"]), 9)
    return round(post["mean"], 9)


def probability_to_be_best(
    reward_type: str,
    posts: Sequence[Mapping[str, float]],
    *,
    draws: int,
    rng: np.random.Generator,
) -> list[float]:
    """P(each arm has the highest mean), estimated from `draws` joint posterior draws."""
    if reward_type == "binary":
        return [
            float(p)
            for p in bandits.probability_to_be_best(
                [p["alpha"] for p in posts], [p["beta"] for p in posts], draws=draws, rng=rng
            )
        ]
    return [
        float(p)
        for p in bandits.probability_to_be_best_gaussian(
            [p["mean"] for p in posts], [p["variance"] for p in posts], draws=draws, rng=rng
        )
    ]

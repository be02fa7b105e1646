"""Per-variant posteriors in the routes ConfigMap format, and probability to be best among them.

Binary rewards: Beta(1 + successes, 1 + failures) where the observations are the *joined feedback*
(`rewards` = how many rewards arrived, `rewardSum` = how many were 1), not the requests: with
delayed rewards, a request whose feedback has not arrived yet is unknown, not a failure, so counting
it as one would bias every variant that grows fast (the challenger Thompson is favouring) downwards.

Continuous rewards: the routers export only the count and the sum of rewards, not the sum of
squares, so the observation variance cannot be estimated; the posterior of the mean is the conjugate
Normal with a N(0, 1) prior and unit observation variance (rewards are assumed scaled to about unit
variance), i.e. mean = sum / (n + 1), variance = 1 / (n + 1). This is the documented limitation of
continuous experiments until the routers export a sum of squares.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from modelpilot.stats import bandits


def prior(reward_type: str) -> dict[str, float]:
    return update(reward_type, rewards=0, reward_sum=0.0)


def update(reward_type: str, *, rewards: int, reward_sum: float) -> dict[str, float]:
    """The posterior after `rewards` observations summing to `reward_sum`."""
    if reward_type == "binary":
        successes = min(max(reward_sum, 0.0), float(rewards))
        return {"alpha": 1.0 + successes, "beta": 1.0 + rewards - successes}
    n = float(rewards)
    return {"mean": reward_sum / (n + 1.0), "variance": 1.0 / (n + 1.0)}


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

"""A regret simulator for the bandit policies on Bernoulli arms.

Runs `seeds` independent experiments side by side (every array has a leading seed axis, so one
round is a handful of numpy calls for all seeds together) for `rounds` requests each. With
`batch_size` b > 1 the policy sees rewards only every b requests (delayed, batched updates, as when
the operator refreshes the routes ConfigMap on a timer): the b requests of a batch are routed from
the same statistics, Thompson drawing a fresh posterior sample per request.

Regret is the pseudo-regret sum_t (mu* - mu_{a_t}), the expected reward lost against always
playing the best arm; its mean and standard deviation are over seeds.

The one design decision: one `numpy.random.Generator` drives all seeds, so a result is reproducible
from (seed, policy, arms, rounds, seeds, batch_size) while the seeds stay independent streams.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from modelpilot import errors
from modelpilot.stats import bandits

Policy = Literal["thompson", "epsilon-greedy", "ucb1", "uniform"]
POLICIES: tuple[Policy, ...] = ("thompson", "epsilon-greedy", "ucb1", "uniform")
FloatArray = npt.NDArray[np.float64]


@dataclasses.dataclass(frozen=True)
class RegretResult:
    policy: Policy
    arms: list[float]
    rounds: int
    seeds: int
    batch_size: int
    epsilon: float
    mean_regret: float
    regret_std: float
    pulls: list[float]  # mean pulls per arm over seeds
    best_arm_share: float  # mean share of requests sent to the best arm
    regrets: list[float]  # per seed

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        del out["regrets"]
        return out


def simulate(
    *,
    arms: Sequence[float],
    policy: Policy,
    rounds: int,
    seeds: int = 50,
    batch_size: int = 1,
    epsilon: float = 0.1,
    rng: np.random.Generator,
) -> RegretResult:
    mu = np.asarray(arms, dtype=np.float64)
    if mu.ndim != 1 or mu.shape[0] < 2:
        raise errors.InputError("arms: need at least two arm rates")
    if not np.all((mu >= 0) & (mu <= 1)):
        raise errors.InputError("arms: every rate must be between 0 and 1")
    if policy not in POLICIES:
        raise errors.InputError(f"policy must be one of {', '.join(POLICIES)}, got {policy!r}")
    if rounds < 1:
        raise errors.InputError(f"rounds must be at least 1, got {rounds}")
    if seeds < 1:
        raise errors.InputError(f"seeds must be at least 1, got {seeds}")
    if batch_size < 1:
        raise errors.InputError(f"batch-size must be at least 1, got {batch_size}")
    if not 0 <= epsilon <= 1:
        raise errors.InputError(f"epsilon must be in [0, 1], got {epsilon}")
    k = mu.shape[0]
    pulls = np.zeros((seeds, k))
    wins = np.zeros((seeds, k))
    seed_index = np.arange(seeds)
    for start in range(0, rounds, batch_size):
        b = min(batch_size, rounds - start)
        chosen = _choose(policy, pulls=pulls, wins=wins, b=b, epsilon=epsilon, rng=rng)  # (b, S)
        rewards = rng.random((b, seeds)) < mu[chosen]
        for row in range(b):
            np.add.at(pulls, (seed_index, chosen[row]), 1.0)
            np.add.at(wins, (seed_index, chosen[row]), rewards[row])
    best = int(np.argmax(mu))
    regrets = pulls @ (mu[best] - mu)
    return RegretResult(
        policy=policy,
        arms=mu.tolist(),
        rounds=rounds,
        seeds=seeds,
        batch_size=batch_size,
        epsilon=epsilon,
        mean_regret=float(regrets.mean()),
        regret_std=float(regrets.std(ddof=1)) if seeds > 1 else 0.0,
        pulls=pulls.mean(axis=0).tolist(),
        best_arm_share=float((pulls[:, best] / rounds).mean()),
        regrets=regrets.tolist(),
    )


def _choose(
    policy: Policy,
    *,
    pulls: FloatArray,
    wins: FloatArray,
    b: int,
    epsilon: float,
    rng: np.random.Generator,
) -> npt.NDArray[np.int64]:
    seeds, k = pulls.shape
    if policy == "thompson":
        alphas, betas = bandits.PRIOR_ALPHA + wins, bandits.PRIOR_BETA + pulls - wins
        out: npt.NDArray[np.int64] = bandits.choose_thompson(alphas, betas, rng=rng, size=b)
        return out
    if policy == "uniform":
        return rng.integers(0, k, size=(b, seeds))
    if policy == "epsilon-greedy":
        means = np.broadcast_to(bandits.empirical_means(pulls, wins), (b, seeds, k))
        greedy = bandits.argmax_random_ties(means, rng=rng)
        explore = rng.random((b, seeds)) < epsilon
        return np.where(explore, rng.integers(0, k, size=(b, seeds)), greedy)
    # UCB1 is deterministic given the statistics: within a batch every request gets the same arm,
    # except that untried arms are taken in turn so the first batch explores.
    scores = bandits.ucb1_scores(pulls, wins)
    # Arms with no data at the start of the batch have no finite score: after every arm has been
    # tried once, the rest of the batch goes to the best finite score (any arm if none has one).
    finite = np.where(np.isfinite(scores), scores, -np.inf)
    settled = np.where(np.isfinite(finite).any(axis=1, keepdims=True), finite, 0.0)
    chosen = np.empty((b, seeds), dtype=np.int64)
    p = pulls.copy()
    for row in range(b):
        untried = p == 0
        if not untried.any():
            chosen[row:] = bandits.argmax_random_ties(settled, rng=rng)
            break
        pick = bandits.argmax_random_ties(np.where(untried, np.inf, settled), rng=rng)
        chosen[row] = pick
        p[np.arange(seeds), pick] += 1
    return chosen


def uniform_expected_regret(arms: Sequence[float], rounds: int) -> float:
    """Closed form for the uniform split: rounds x mean gap to the best arm."""
    mu = np.asarray(arms, dtype=np.float64)
    return float(rounds * (mu.max() - mu).mean()) if rounds > 0 else math.nan

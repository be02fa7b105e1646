"""Multi-armed bandit policies and the traffic weights the experiment controller writes.

Policies: Beta-Bernoulli Thompson sampling (Beta(1, 1) prior; Thompson 1933, Chapelle & Li 2011),
Gaussian Thompson sampling for continuous rewards, epsilon-greedy and UCB1 (Auer, Cesa-Bianchi &
Fischer 2002). Each policy is a pure function of per-arm sufficient statistics (pulls, reward sums,
reward sums of squares), so the posterior can live in a ConfigMap and updates can be batched or
delayed: call `choose` many times with the same statistics, then add the batch's counts.

The one design decision: traffic weights are **probabilities to be best** estimated from posterior
draws (`probability_to_be_best`), then made into integer percentages by `bounded_weights`, the
Euclidean projection of 100 x shares onto {floor <= w_i <= ceiling, sum w_i = 100} followed by
largest-remainder rounding, so every variant keeps a minimum of exploration traffic, none takes more
than the ceiling, and the integers sum to exactly 100.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np
import numpy.typing as npt

from modelpilot import errors

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

PRIOR_ALPHA = 1.0
PRIOR_BETA = 1.0


def _vector(name: str, values: Any, *, allow_empty: bool = False) -> FloatArray:
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 1 or (arr.shape[0] == 0 and not allow_empty):
        raise errors.InputError(f"{name}: expected a non-empty list of numbers")
    if not np.all(np.isfinite(arr)):
        raise errors.InputError(f"{name}: every value must be a finite number")
    return arr


# ---- posteriors ----------------------------------------------------------------------------


def beta_posterior(
    successes: Any,
    failures: Any,
    *,
    prior_alpha: float = PRIOR_ALPHA,
    prior_beta: float = PRIOR_BETA,
) -> tuple[FloatArray, FloatArray]:
    """(alphas, betas) of the Beta posteriors after the given successes and failures per arm."""
    s = _vector("successes", successes)
    f = _vector("failures", failures)
    if s.shape != f.shape:
        raise errors.InputError("successes and failures: one value per arm in each")
    if np.any(s < 0) or np.any(f < 0):
        raise errors.InputError("successes and failures must be >= 0")
    return prior_alpha + s, prior_beta + f


@dataclasses.dataclass(frozen=True)
class GaussianPosterior:
    """Posterior of each arm's mean reward: Normal(mean, variance) per arm."""

    mean: FloatArray
    variance: FloatArray


def gaussian_posterior(
    counts: Any,
    reward_sums: Any,
    reward_sums_sq: Any,
    *,
    prior_mean: float = 0.0,
    prior_variance: float = 1e6,
    default_noise_variance: float = 1.0,
) -> GaussianPosterior:
    """Normal posterior of the mean reward with the noise variance plugged in from the data.

    Conjugate normal update with known noise variance sigma^2 (estimated as the sample variance
    once an arm has two observations, `default_noise_variance` before): precision =
    1/prior_variance + n/sigma^2, mean = (prior_mean/prior_variance + sum/sigma^2) / precision.
    The default prior is nearly flat, so the posterior mean is the sample mean.
    """
    n = _vector("counts", counts)
    s = _vector("reward_sums", reward_sums)
    ss = _vector("reward_sums_sq", reward_sums_sq)
    if not (n.shape == s.shape == ss.shape):
        raise errors.InputError("counts, reward sums and sums of squares: one value per arm")
    if prior_variance <= 0:
        raise errors.InputError(f"prior_variance must be > 0, got {prior_variance}")
    with np.errstate(divide="ignore", invalid="ignore"):
        sample_var = np.where(n > 1, (ss - s * s / np.maximum(n, 1)) / np.maximum(n - 1, 1), np.nan)
    noise = np.where(np.isfinite(sample_var) & (sample_var > 0), sample_var, default_noise_variance)
    precision = 1.0 / prior_variance + n / noise
    mean = (prior_mean / prior_variance + s / noise) / precision
    return GaussianPosterior(mean=mean, variance=1.0 / precision)


# ---- probability to be best and weights ----------------------------------------------------


def _p_best_from_draws(draws: FloatArray) -> FloatArray:
    winners = np.argmax(draws, axis=-1)
    out: FloatArray = np.bincount(winners, minlength=draws.shape[-1]) / draws.shape[0]
    return out


def probability_to_be_best(
    alphas: Any, betas: Any, *, draws: int = 10_000, rng: np.random.Generator
) -> FloatArray:
    """P(arm i has the highest rate) under independent Beta posteriors, from `draws` samples."""
    a = _vector("alphas", alphas)
    b = _vector("betas", betas)
    if a.shape != b.shape:
        raise errors.InputError("alphas and betas: one value per arm in each")
    if np.any(a <= 0) or np.any(b <= 0):
        raise errors.InputError("alphas and betas must be > 0")
    if draws < 1:
        raise errors.InputError(f"draws must be at least 1, got {draws}")
    return _p_best_from_draws(rng.beta(a, b, size=(draws, a.shape[0])))


def probability_to_be_best_gaussian(
    means: Any, variances: Any, *, draws: int = 10_000, rng: np.random.Generator
) -> FloatArray:
    """P(arm i has the highest mean) under independent Normal posteriors, from `draws` samples."""
    m = _vector("means", means)
    v = _vector("variances", variances)
    if m.shape != v.shape:
        raise errors.InputError("means and variances: one value per arm in each")
    if np.any(v < 0):
        raise errors.InputError("variances must be >= 0")
    if draws < 1:
        raise errors.InputError(f"draws must be at least 1, got {draws}")
    return _p_best_from_draws(m + np.sqrt(v) * rng.standard_normal((draws, m.shape[0])))


def thompson_weights(
    alphas: Any, betas: Any, *, draws: int = 10_000, rng: np.random.Generator
) -> FloatArray:
    """Thompson sampling's traffic shares: each arm's probability to be best (they sum to 1)."""
    return probability_to_be_best(alphas, betas, draws=draws, rng=rng)


def thompson_weights_gaussian(
    means: Any, variances: Any, *, draws: int = 10_000, rng: np.random.Generator
) -> FloatArray:
    return probability_to_be_best_gaussian(means, variances, draws=draws, rng=rng)


def epsilon_greedy_weights(means: Any, *, epsilon: float) -> FloatArray:
    """Shares under epsilon-greedy: epsilon spread evenly, the rest to the best arm(s)."""
    m = _vector("means", means)
    if not 0 <= epsilon <= 1:
        raise errors.InputError(f"epsilon must be in [0, 1], got {epsilon}")
    best = m == m.max()
    out: FloatArray = epsilon / m.shape[0] + (1 - epsilon) * best / best.sum()
    return out


def bounded_weights(shares: Any, *, floor: float, ceiling: float) -> list[int]:
    """Integer percentages near 100 x shares, each in [floor, ceiling], summing to exactly 100.

    The continuous solution is the Euclidean projection of 100 x shares onto the capped simplex
    (clip(100 s + mu, floor, ceiling) with mu found by bisection); then largest-remainder
    (Hamilton) rounding, which never leaves [floor, ceiling] for integer bounds.
    """
    s = _vector("shares", shares)
    n = s.shape[0]
    if np.any(s < 0) or s.sum() <= 0:
        raise errors.InputError("shares must be >= 0 with a positive sum")
    if not (0 <= floor <= ceiling <= 100):
        raise errors.InputError(
            f"weight bounds: need 0 <= floor <= ceiling <= 100, got floor={floor}, "
            f"ceiling={ceiling}"
        )
    lo_i, hi_i = math.ceil(floor), math.floor(ceiling)
    if n * lo_i > 100 or n * hi_i < 100:
        raise errors.InputError(
            f"weight bounds infeasible: {n} variants with floor {floor} and ceiling {ceiling} "
            f"cannot sum to 100 (need {n} x floor <= 100 <= {n} x ceiling)"
        )
    target = 100.0 * s / s.sum()
    lo, hi = -100.0 - float(hi_i), 100.0 + float(hi_i)
    for _ in range(80):  # 2^-80 of a 400-point bracket: far below float resolution
        mu = (lo + hi) / 2.0
        if np.clip(target + mu, lo_i, hi_i).sum() > 100.0:
            hi = mu
        else:
            lo = mu
    x = np.clip(target + (lo + hi) / 2.0, lo_i, hi_i)
    base = np.floor(x + 1e-9).astype(np.int64)
    base = np.clip(base, lo_i, hi_i)
    remaining = 100 - int(base.sum())
    remainders = x - base
    if remaining > 0:
        eligible = np.flatnonzero(base < hi_i)
        pick = eligible[np.argsort(-remainders[eligible], kind="stable")[:remaining]]
        base[pick] += 1
    elif remaining < 0:
        eligible = np.flatnonzero(base > lo_i)
        pick = eligible[np.argsort(remainders[eligible], kind="stable")[:-remaining]]
        base[pick] -= 1
    result = [int(v) for v in base]
    if sum(result) != 100:  # unreachable for feasible bounds; never hand out a bad split
        raise errors.InputError("weight bounds: could not round the split to 100")
    return result


# ---- per-request choices (the router, the simulator) ---------------------------------------


def choose_thompson(
    alphas: Any, betas: Any, *, rng: np.random.Generator, size: int | None = None
) -> Any:
    """Arm index(es) by Thompson sampling: one posterior draw per arm, take the highest."""
    a = np.asarray(alphas, dtype=np.float64)
    b = np.asarray(betas, dtype=np.float64)
    shape = a.shape if size is None else (size, *a.shape)
    return np.argmax(rng.beta(a, b, size=shape), axis=-1)


def choose_thompson_gaussian(
    means: Any, variances: Any, *, rng: np.random.Generator, size: int | None = None
) -> Any:
    m = np.asarray(means, dtype=np.float64)
    v = np.asarray(variances, dtype=np.float64)
    shape = m.shape if size is None else (size, *m.shape)
    return np.argmax(m + np.sqrt(v) * rng.standard_normal(shape), axis=-1)


def empirical_means(counts: Any, reward_sums: Any) -> FloatArray:
    """Reward means per arm; an arm never pulled gets +inf so greedy policies try it first."""
    n = np.asarray(counts, dtype=np.float64)
    s = np.asarray(reward_sums, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        out: FloatArray = np.where(n > 0, s / np.maximum(n, 1), np.inf)
    return out


def ucb1_scores(counts: Any, reward_sums: Any) -> FloatArray:
    """UCB1 index mean + sqrt(2 ln t / n_i) (Auer et al. 2002); untried arms score +inf."""
    n = np.asarray(counts, dtype=np.float64)
    t = np.maximum(n.sum(axis=-1, keepdims=True), 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        bonus = np.sqrt(2.0 * np.log(t) / n)
    out: FloatArray = np.where(n > 0, empirical_means(n, reward_sums) + bonus, np.inf)
    return out


def argmax_random_ties(scores: FloatArray, *, rng: np.random.Generator) -> Any:
    """Argmax over the last axis with ties broken uniformly at random."""
    noise = rng.random(scores.shape)
    best = scores == scores.max(axis=-1, keepdims=True)
    return np.argmax(np.where(best, noise, -1.0), axis=-1)


def choose_epsilon_greedy(
    counts: Any, reward_sums: Any, *, epsilon: float, rng: np.random.Generator
) -> Any:
    means = empirical_means(counts, reward_sums)
    greedy = argmax_random_ties(means, rng=rng)
    explore = rng.random(np.shape(greedy)) < epsilon
    random_arm = rng.integers(0, means.shape[-1], size=np.shape(greedy))
    return np.where(explore, random_arm, greedy)


def choose_ucb1(counts: Any, reward_sums: Any, *, rng: np.random.Generator) -> Any:
    return argmax_random_ties(ucb1_scores(counts, reward_sums), rng=rng)

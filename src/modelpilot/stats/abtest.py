"""Fixed-horizon A/B statistics for conversion rates: sample size, two-proportion z-test, SRM.

- `sample_size`: per-variant sample size of a two-sided two-proportion test. The default
  ("unpooled") is the normal approximation behind Evan Miller's calculator: the null variance uses
  the baseline rate in both arms, the alternative variance each arm's own rate,
      n_c = (z_{1-a/2} sqrt(p1 q1 (1 + 1/r)) + z_{power} sqrt(p1 q1 + p2 q2 / r))^2 / (p2 - p1)^2,
  with r = n_treatment / n_control (r = 1 gives Miller's formula exactly). "arcsine" uses Cohen's
  effect size h = 2 asin(sqrt(p2)) - 2 asin(sqrt(p1)) and solves the two-sided normal power
  equation including the far tail, as statsmodels `NormalIndPower(...).solve_power` does (and
  G*Power). "pooled" is the textbook formula of the guide this project grew from: both the null
  and the alternative variance use the allocation-weighted average rate p_bar = (p1 + r p2)/(1 + r),
      n_c = (z_{1-a/2} + z_{power})^2 p_bar (1 - p_bar) (1 + 1/r) / (p2 - p1)^2,
  which for r = 1 is 2 p_bar q_bar (z_a + z_b)^2 / delta^2: 3,842.03, so 3,843 per arm, for
  10% -> 12% at alpha 0.05 and power 0.8, against 3,623 (unpooled) and 3,835 (arcsine). Below
  50% it asks for more than "unpooled": p_bar q_bar exceeds p1 q1 and, by concavity, the mean of
  p1 q1 and p2 q2.
- `two_proportion_ztest`: z with the pooled standard error (= statsmodels `proportions_ztest`),
  and the Wald (unpooled) confidence interval of the difference treatment - control.
- `srm_test`: sample-ratio mismatch, Pearson's chi-square goodness of fit of the observed counts to
  the planned ratios (= `scipy.stats.chisquare`); flagged at p < 0.001 by default (Fabijan et al.,
  "Diagnosing Sample Ratio Mismatch in Online Controlled Experiments", KDD 2019).

The one design decision: every input is validated here, with errors naming the field, so the CLI,
the operator and the services share one set of messages.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import scipy.optimize
import scipy.stats

from modelpilot import errors

Method = Literal["unpooled", "pooled", "arcsine"]
METHODS: tuple[Method, ...] = ("unpooled", "pooled", "arcsine")


def _rate(name: str, value: float) -> float:
    if not (isinstance(value, int | float) and math.isfinite(value) and 0 < value < 1):
        raise errors.InputError(f"{name} must be a rate strictly between 0 and 1, got {value}")
    return float(value)


def _probability(name: str, value: float) -> float:
    if not (math.isfinite(value) and 0 < value < 1):
        raise errors.InputError(f"{name} must be strictly between 0 and 1, got {value}")
    return float(value)


@dataclasses.dataclass(frozen=True)
class SampleSize:
    n_control: int
    n_treatment: int
    total: int
    n_control_exact: float  # before rounding up
    baseline_rate: float
    treatment_rate: float
    mde_absolute: float
    alpha: float
    power: float
    ratio: float
    method: Method

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _normal_power_two_sided(n1: float, *, h: float, alpha: float, ratio: float) -> float:
    """Power of the two-sided normal test (statsmodels' normal_power with nobs = n1*r/(1+r))."""
    crit = scipy.stats.norm.isf(alpha / 2)
    shift = abs(h) * math.sqrt(n1 * ratio / (1.0 + ratio))
    return float(scipy.stats.norm.sf(crit - shift) + scipy.stats.norm.cdf(-crit - shift))


def sample_size(
    *,
    baseline_rate: float,
    mde: float,
    relative: bool = False,
    alpha: float = 0.05,
    power: float = 0.8,
    ratio: float = 1.0,
    method: Method = "unpooled",
) -> SampleSize:
    """Sample size per variant to detect `mde` (absolute, or relative to the baseline)."""
    p1 = _rate("baseline rate", baseline_rate)
    if not (math.isfinite(mde) and mde > 0):
        raise errors.InputError(f"mde must be > 0, got {mde}")
    alpha = _probability("alpha", alpha)
    power = _probability("power", power)
    if not (math.isfinite(ratio) and ratio > 0):
        raise errors.InputError(f"ratio (treatment/control size) must be > 0, got {ratio}")
    if method not in METHODS:
        raise errors.InputError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    p2 = p1 * (1.0 + mde) if relative else p1 + mde
    if not 0 < p2 < 1:
        kind = "relative" if relative else "absolute"
        raise errors.InputError(
            f"mde: baseline rate {p1} with {kind} mde {mde} gives a treatment rate {p2:.6g} "
            "outside (0, 1)"
        )
    z_a = scipy.stats.norm.isf(alpha / 2)
    z_b = scipy.stats.norm.ppf(power)
    delta = p2 - p1
    if method == "unpooled":
        sd_null = math.sqrt(p1 * (1 - p1) * (1 + 1 / ratio))
        sd_alt = math.sqrt(p1 * (1 - p1) + p2 * (1 - p2) / ratio)
        n1 = (z_a * sd_null + z_b * sd_alt) ** 2 / delta**2
    elif method == "pooled":
        p_bar = (p1 + ratio * p2) / (1 + ratio)
        n1 = (z_a + z_b) ** 2 * p_bar * (1 - p_bar) * (1 + 1 / ratio) / delta**2
    else:
        h = 2 * math.asin(math.sqrt(p2)) - 2 * math.asin(math.sqrt(p1))
        if power <= alpha / 2:
            raise errors.InputError(f"power must exceed alpha/2, got power={power}")
        # The closed form (z_a + z_b)^2 (1 + 1/r) / h^2 ignores the far tail; it brackets the root.
        guess = (z_a + z_b) ** 2 * (1 + 1 / ratio) / h**2
        n1 = scipy.optimize.brentq(
            lambda n: _normal_power_two_sided(n, h=h, alpha=alpha, ratio=ratio) - power,
            guess * 0.5,
            guess * 1.5,
            xtol=1e-12,
            rtol=1e-14,
        )
    n_c = math.ceil(n1 - 1e-9)
    n_t = math.ceil(n1 * ratio - 1e-9)
    return SampleSize(
        n_control=n_c,
        n_treatment=n_t,
        total=n_c + n_t,
        n_control_exact=float(n1),
        baseline_rate=p1,
        treatment_rate=p2,
        mde_absolute=delta,
        alpha=alpha,
        power=power,
        ratio=float(ratio),
        method=method,
    )


@dataclasses.dataclass(frozen=True)
class ZTestResult:
    control_rate: float
    treatment_rate: float
    absolute_lift: float
    relative_lift: float | None  # None when the control rate is 0
    z: float
    p_value: float
    ci_low: float
    ci_high: float
    significant: bool

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _counts(name: str, successes: int, total: int) -> None:
    if total <= 0:
        raise errors.InputError(f"{name}: the number of trials must be > 0, got {total}")
    if successes < 0 or successes > total:
        raise errors.InputError(
            f"{name}: successes must be between 0 and the number of trials, got {successes}/{total}"
        )


def two_proportion_ztest(
    *,
    control_successes: int,
    control_total: int,
    treatment_successes: int,
    treatment_total: int,
    alpha: float = 0.05,
) -> ZTestResult:
    """Two-sided z-test of treatment rate = control rate, with lift and its confidence interval."""
    _counts("control", control_successes, control_total)
    _counts("treatment", treatment_successes, treatment_total)
    alpha = _probability("alpha", alpha)
    pc = control_successes / control_total
    pt = treatment_successes / treatment_total
    pooled = (control_successes + treatment_successes) / (control_total + treatment_total)
    se_pooled = math.sqrt(pooled * (1 - pooled) * (1 / control_total + 1 / treatment_total))
    diff = pt - pc
    if se_pooled == 0:
        # Both arms all-success or all-failure: no evidence of a difference.
        z, p = 0.0, 1.0
    else:
        z = diff / se_pooled
        p = float(2 * scipy.stats.norm.sf(abs(z)))
    se = math.sqrt(pc * (1 - pc) / control_total + pt * (1 - pt) / treatment_total)
    half = float(scipy.stats.norm.isf(alpha / 2)) * se
    return ZTestResult(
        control_rate=pc,
        treatment_rate=pt,
        absolute_lift=diff,
        relative_lift=diff / pc if pc > 0 else None,
        z=z,
        p_value=p,
        ci_low=diff - half,
        ci_high=diff + half,
        significant=p < alpha,
    )


@dataclasses.dataclass(frozen=True)
class SrmResult:
    chi2: float
    p_value: float
    mismatch: bool
    expected: list[float]

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def srm_test(
    counts: Sequence[float], ratios: Sequence[float] | None = None, *, threshold: float = 0.001
) -> SrmResult:
    """Chi-square test that the observed counts per variant follow the planned ratios."""
    c = np.asarray(counts, dtype=np.float64)
    if c.ndim != 1 or c.shape[0] < 2:
        raise errors.InputError("counts: need at least two variants")
    if not np.all(np.isfinite(c)) or np.any(c < 0) or np.any(c != np.round(c)):
        raise errors.InputError("counts must be whole numbers >= 0")
    if c.sum() <= 0:
        raise errors.InputError("counts: the total must be > 0")
    r = np.ones_like(c) if ratios is None else np.asarray(ratios, dtype=np.float64)
    if r.shape != c.shape:
        raise errors.InputError(
            f"ratios: {r.shape[0] if r.ndim == 1 else r.size} given for {c.shape[0]} counts; "
            "give one ratio per count"
        )
    if not np.all(np.isfinite(r)) or np.any(r <= 0):
        raise errors.InputError("ratios must be > 0")
    threshold = _probability("threshold", threshold)
    expected = c.sum() * r / r.sum()
    chi2 = float(np.sum((c - expected) ** 2 / expected))
    p = float(scipy.stats.chi2.sf(chi2, c.shape[0] - 1))
    return SrmResult(chi2=chi2, p_value=p, mismatch=p < threshold, expected=expected.tolist())

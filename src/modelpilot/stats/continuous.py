"""Continuous metrics: Welch's t-test and CUPED variance reduction.

- `welch_ttest(control, treatment)`: difference of means treatment - control, Welch's unequal
  variance t statistic with the Welch-Satterthwaite degrees of freedom (= scipy.stats.ttest_ind(
  treatment, control, equal_var=False)), and the confidence interval of the difference.
- `cuped`: Deng, Xu, Kohavi & Walker, "Improving the Sensitivity of Online Controlled Experiments
  by Utilizing Pre-Experiment Data", WSDM 2013. Y_adj = Y - theta (X - mean(X)) with
  theta = cov(X, Y) / var(X) estimated on both arms pooled; the variance of Y_adj is
  (1 - rho^2) var(Y), and the treatment effect estimate stays unbiased because X is measured before
  assignment.

The one design decision: theta is estimated once over both arms together (not per arm), which keeps
the adjusted difference of means unbiased and is what the paper recommends.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np
import numpy.typing as npt
import scipy.stats

from modelpilot import errors

FloatArray = npt.NDArray[np.float64]


def _sample(name: str, values: Any, *, minimum: int = 2) -> FloatArray:
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 1 or arr.shape[0] < minimum:
        raise errors.InputError(f"{name}: need at least {minimum} values")
    if not np.all(np.isfinite(arr)):
        raise errors.InputError(f"{name}: every value must be a finite number")
    return arr


@dataclasses.dataclass(frozen=True)
class WelchResult:
    control_mean: float
    treatment_mean: float
    difference: float
    statistic: float
    df: float
    p_value: float
    ci_low: float
    ci_high: float
    significant: bool

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def welch_ttest(control: Any, treatment: Any, *, alpha: float = 0.05) -> WelchResult:
    a = _sample("control", control)
    b = _sample("treatment", treatment)
    if not 0 < alpha < 1:
        raise errors.InputError(f"alpha must be strictly between 0 and 1, got {alpha}")
    va = a.var(ddof=1) / a.shape[0]
    vb = b.var(ddof=1) / b.shape[0]
    se2 = va + vb
    if se2 == 0:
        raise errors.InputError("welch t-test: both samples are constant")
    diff = float(b.mean() - a.mean())
    t = diff / math.sqrt(se2)
    df = se2**2 / (vb**2 / (b.shape[0] - 1) + va**2 / (a.shape[0] - 1))
    p = float(2 * scipy.stats.t.sf(abs(t), df))
    half = float(scipy.stats.t.isf(alpha / 2, df)) * math.sqrt(se2)
    return WelchResult(
        control_mean=float(a.mean()),
        treatment_mean=float(b.mean()),
        difference=diff,
        statistic=float(t),
        df=float(df),
        p_value=p,
        ci_low=diff - half,
        ci_high=diff + half,
        significant=p < alpha,
    )


def cuped_theta(metric: Any, covariate: Any) -> float:
    """theta = cov(X, Y) / var(X), the regression slope of the metric on its pre-period value."""
    y = _sample("metric", metric)
    x = _sample("covariate", covariate)
    if x.shape != y.shape:
        raise errors.InputError("metric and covariate: one covariate value per metric value")
    vx = float(x.var(ddof=1))
    if vx == 0:
        raise errors.InputError("covariate: constant, CUPED needs a varying pre-period metric")
    return float(np.cov(x, y, ddof=1)[0, 1] / vx)


def cuped_adjust(metric: Any, covariate: Any, *, theta: float, covariate_mean: float) -> FloatArray:
    y = np.asarray(metric, dtype=np.float64)
    x = np.asarray(covariate, dtype=np.float64)
    out: FloatArray = y - theta * (x - covariate_mean)
    return out


@dataclasses.dataclass(frozen=True)
class CupedResult:
    theta: float
    variance_reduction: float  # 1 - var(Y_adj) / var(Y), pooled over both arms
    unadjusted: WelchResult
    adjusted: WelchResult

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def cuped(
    *,
    control: Any,
    control_covariate: Any,
    treatment: Any,
    treatment_covariate: Any,
    alpha: float = 0.05,
) -> CupedResult:
    """Welch's test on CUPED-adjusted metrics, with the unadjusted test for comparison."""
    yc, xc = _sample("control", control), _sample("control covariate", control_covariate)
    yt, xt = _sample("treatment", treatment), _sample("treatment covariate", treatment_covariate)
    if yc.shape != xc.shape or yt.shape != xt.shape:
        raise errors.InputError("CUPED: one covariate value per metric value in each arm")
    y = np.concatenate([yc, yt])
    x = np.concatenate([xc, xt])
    theta = cuped_theta(y, x)
    mx = float(x.mean())
    adj_c = cuped_adjust(yc, xc, theta=theta, covariate_mean=mx)
    adj_t = cuped_adjust(yt, xt, theta=theta, covariate_mean=mx)
    adj = np.concatenate([adj_c, adj_t])
    vy = float(y.var(ddof=1))
    reduction = 1.0 - float(adj.var(ddof=1)) / vy if vy > 0 else 0.0
    return CupedResult(
        theta=theta,
        variance_reduction=reduction,
        unadjusted=welch_ttest(yc, yt, alpha=alpha),
        adjusted=welch_ttest(adj_c, adj_t, alpha=alpha),
    )

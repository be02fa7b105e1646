"""Always-valid p-values for two proportions: the mixture sequential probability ratio test (mSPRT).

Johari, Koomen, Pekelis & Walsh, "Peeking at A/B Tests: Why it matters, and what to do about it",
KDD 2017 (and Operations Research 2022). The difference of rates d = p_t - p_c is estimated by
d_hat with variance s^2 = pbar (1 - pbar) (1/n_c + 1/n_t) under the null (pooled rate). Mixing the
likelihood ratio of N(d, s^2) against N(0, s^2) over a normal prior d ~ N(0, tau^2) gives

    Lambda_n = sqrt(s^2 / (s^2 + tau^2)) * exp(tau^2 d_hat^2 / (2 s^2 (s^2 + tau^2))),

which for equal arms of n (s^2 = 2 sigma^2 / n) is the paper's
sqrt(2 sigma^2 / (2 sigma^2 + n tau^2)) exp(n^2 tau^2 d_hat^2 / (4 sigma^2 (2 sigma^2 + n tau^2))).
The always-valid p-value is p_n = min(p_{n-1}, 1 / Lambda_n), p_0 = 1: stopping the first time
p_n < alpha keeps the false-positive rate at or below alpha however often one looks.

The one design decision is the mixing variance tau^2, the prior variance of the true difference of
rates: it tunes which effect sizes are detected fastest (about |d| ~ tau) and never the validity.
The default tau = 0.01 (tau^2 = 1e-4) suits conversion rates of a few percent to a few tens of
percent and lifts of a fraction of a point to a few points; pass your MDE's scale otherwise.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from modelpilot import errors

FloatArray = npt.NDArray[np.float64]
DEFAULT_MIXING_VARIANCE = 1e-4


def msprt_log_likelihood_ratio(
    *,
    control_successes: Any,
    control_totals: Any,
    treatment_successes: Any,
    treatment_totals: Any,
    mixing_variance: float = DEFAULT_MIXING_VARIANCE,
) -> FloatArray:
    """log Lambda_n elementwise for cumulative counts (any broadcastable shape)."""
    if not mixing_variance > 0:
        raise errors.InputError(f"mixing_variance must be > 0, got {mixing_variance}")
    sc = np.asarray(control_successes, dtype=np.float64)
    nc = np.asarray(control_totals, dtype=np.float64)
    st = np.asarray(treatment_successes, dtype=np.float64)
    nt = np.asarray(treatment_totals, dtype=np.float64)
    if np.any(nc <= 0) or np.any(nt <= 0):
        raise errors.InputError("totals must be > 0 at every look")
    if np.any(sc < 0) or np.any(st < 0) or np.any(sc > nc) or np.any(st > nt):
        raise errors.InputError("successes must be between 0 and the totals at every look")
    d = st / nt - sc / nc
    pooled = (sc + st) / (nc + nt)
    s2 = pooled * (1 - pooled) * (1 / nc + 1 / nt)
    tau2 = mixing_variance
    with np.errstate(divide="ignore", invalid="ignore"):
        llr = 0.5 * np.log(s2 / (s2 + tau2)) + tau2 * d**2 / (2 * s2 * (s2 + tau2))
    # s^2 = 0 (no successes or no failures yet in either arm): no evidence, Lambda = 1.
    out: FloatArray = np.where(s2 > 0, llr, 0.0)
    return out


def always_valid_pvalues(
    *,
    control_successes: Any,
    control_totals: Any,
    treatment_successes: Any,
    treatment_totals: Any,
    mixing_variance: float = DEFAULT_MIXING_VARIANCE,
) -> FloatArray:
    """Always-valid p-values along the last axis (the looks), for cumulative counts per look.

    Leading axes are independent streams (for example simulated experiments), so a whole
    simulation is one call.
    """
    llr = msprt_log_likelihood_ratio(
        control_successes=control_successes,
        control_totals=control_totals,
        treatment_successes=treatment_successes,
        treatment_totals=treatment_totals,
        mixing_variance=mixing_variance,
    )
    p = np.minimum(1.0, np.exp(-llr))
    out: FloatArray = np.minimum.accumulate(np.atleast_1d(p), axis=-1)
    return out

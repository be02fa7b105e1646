"""Guardrails: has a variant's error rate or p99 latency broken the Experiment's limits?

A fixed threshold on the observed error rate fires falsely at low traffic (one error in the first
ten requests is 10 %). The error guardrail is therefore a test: a variant breaches `maxErrorRate`
when the exact one-sided binomial test of H0 "error rate <= maxErrorRate" rejects at
`ERROR_ALPHA` (p = P(X >= errors | requests, maxErrorRate), scipy's `binomtest(...,
alternative="greater")`). A blatant failure (30 % errors against a 2 % limit) is rejected after a
few dozen requests, i.e. within one update interval, while 2 errors in 50 requests against a 2 %
limit (p = 0.26) or one error in the very first request (p = 0.02) are not. The small alpha keeps
the false-alarm rate low although the test is repeated every interval: it is applied both to the
last interval (a variant that turns bad late is caught at once) and to the whole experiment (a
steady excess is caught as evidence grows).
"""

from __future__ import annotations

from dataclasses import dataclass

from scipy import stats as sps

ERROR_ALPHA = 0.001
"""Significance level of the one-sided binomial test behind the error guardrail."""

LATENCY_MIN_REQUESTS = 100
"""A p99 means little below this many requests (fewer than one sample beyond the quantile)."""


@dataclass(frozen=True)
class Breach:
    variant: str
    reason: str
    """`ErrorRate` or `LatencyP99`."""
    message: str


def error_rate_p_value(*, errors: int, requests: int, limit: float) -> float:
    """One-sided exact binomial p-value of H0 "rate <= limit": P(X >= errors), X ~ Bin(n, limit)."""
    if errors <= 0:
        return 1.0
    return float(sps.binom.sf(errors - 1, requests, limit))


def check(
    variant: str,
    *,
    interval: tuple[int, int],
    total: tuple[int, int],
    latency_p99_ms: float | None,
    max_error_rate: float | None,
    max_latency_p99_ms: float | None,
) -> Breach | None:
    """The first guardrail `variant` breaches, or None; `interval`, `total`: (errors, requests)."""
    if max_error_rate is not None:
        for label, (errs, reqs) in (("in the last interval", interval), ("overall", total)):
            if reqs == 0:
                continue
            p = error_rate_p_value(errors=errs, requests=reqs, limit=max_error_rate)
            if p < ERROR_ALPHA:
                return Breach(
                    variant,
                    "ErrorRate",
                    f"{variant}: error rate {errs}/{reqs} = {errs / reqs:.2%} {label}; "
                    f"binomial test against {max_error_rate:.2%}: p = {p:.1e} < {ERROR_ALPHA}",
                )
    if (
        max_latency_p99_ms is not None
        and latency_p99_ms is not None
        and total[1] >= LATENCY_MIN_REQUESTS
        and latency_p99_ms > max_latency_p99_ms
    ):
        return Breach(
            variant,
            "LatencyP99",
            f"{variant}: p99 latency {latency_p99_ms:.0f} ms > {max_latency_p99_ms:.0f} ms "
            f"after {total[1]} requests",
        )
    return None

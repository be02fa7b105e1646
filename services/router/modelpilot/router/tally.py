"""Per-variant counters behind `GET /stats`: requests, errors, fallbacks, latency, rewards.

Pure. Design decision: latency quantiles come from a fixed-size ring of the most recent latencies
per variant (4,096), so `/stats` reports the current p50/p99 (what the operator's latency guardrail
needs) in bounded memory, while the cumulative distribution lives in the Prometheus histogram.
Rewards are kept as their three sufficient statistics (count, sum, sum of squares), the minimum
from which the operator can estimate both the mean and the variance of a continuous reward.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from modelpilot.api import stats as stats_contract

RING = 4096


@dataclass
class VariantTally:
    requests: int = 0
    errors: int = 0
    fallbacks: int = 0
    rewards: int = 0
    reward_sum: float = 0.0
    reward_sum_squares: float = 0.0
    _ring: list[float] = field(default_factory=list)
    _pos: int = 0

    def latency(self, seconds: float) -> None:
        if len(self._ring) < RING:
            self._ring.append(seconds)
        else:
            self._ring[self._pos] = seconds
            self._pos = (self._pos + 1) % RING

    def stats(self, *, weight: float | None = None) -> stats_contract.VariantStats:
        """This variant's entry of `/stats` (the contract `modelpilot.api.stats`)."""
        p50 = p95 = p99 = None
        if self._ring:
            p50, p95, p99 = (
                x * 1e3 for x in np.quantile(np.asarray(self._ring), [0.5, 0.95, 0.99]).tolist()
            )
        return stats_contract.VariantStats(
            requests=self.requests,
            errors=self.errors,
            fallbacks=self.fallbacks,
            rewards=self.rewards,
            reward_sum=self.reward_sum,
            reward_sum_squares=self.reward_sum_squares,
            latency_p50_ms=p50,
            latency_p95_ms=p95,
            latency_p99_ms=p99,
            latency_window=len(self._ring),
            weight=weight,
        )

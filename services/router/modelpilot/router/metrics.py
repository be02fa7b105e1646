"""Prometheus metrics of the router (names and labels pinned in docs/architecture.md).

A registry per router made by `create_metrics`, never at import time. Label children are cached
per variant so the per-request cost is a dictionary lookup and a few increments.

Rewards: a Prometheus counter may only go up (prometheus_client raises on a negative increment),
but a continuous reward may be negative (a profit, a delta). The signed sum is therefore kept as
two counters, as Prometheus' documentation advises for negative observations: the sum of the
non-negative rewards and the sum of the absolute values of the negative ones; their difference is
the sum of the rewards. With the sum of squares (a counter as it is) and the count, every series
stays monotone, so `rate()`, `increase()` and the operator's reset detection keep their meaning.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import prometheus_client

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)


@dataclass(frozen=True)
class RewardSums:
    """The reward-value series of one variant; `inc(reward)` adds one joined reward to them."""

    positive: Any
    negative: Any
    squares: Any

    def inc(self, reward: float) -> None:
        if reward >= 0:
            self.positive.inc(reward)
        else:
            self.negative.inc(-reward)
        self.squares.inc(reward * reward)


@dataclass
class RouterMetrics:
    registry: prometheus_client.CollectorRegistry
    deployment: str
    requests: Any
    errors: Any
    latency: Any
    fallbacks: Any
    rewards: Any
    reward_sum: Any
    negative_reward_sum: Any
    reward_sum_squares: Any
    weight: Any
    routes_rejected: Any
    _children: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    _weights_seen: set[str] = field(default_factory=set)

    def children(self, variant: str) -> tuple[Any, ...]:
        got = self._children.get(variant)
        if got is None:
            labels = (self.deployment, variant)
            got = (
                self.requests.labels(*labels),
                self.errors.labels(*labels),
                self.latency.labels(*labels),
                self.fallbacks.labels(*labels),
                self.rewards.labels(*labels),
                RewardSums(
                    positive=self.reward_sum.labels(*labels),
                    negative=self.negative_reward_sum.labels(*labels),
                    squares=self.reward_sum_squares.labels(*labels),
                ),
            )
            self._children[variant] = got
        return got

    def set_weights(self, weights: dict[str, float]) -> None:
        for variant in list(self._weights_seen):
            if variant not in weights:
                self.weight.remove(self.deployment, variant)
                self._weights_seen.discard(variant)
        for variant, value in weights.items():
            self.weight.labels(self.deployment, variant).set(value)
            self._weights_seen.add(variant)

    def exposition(self) -> bytes:
        out: bytes = prometheus_client.generate_latest(self.registry)
        return out


def create_metrics(*, deployment: str) -> RouterMetrics:
    registry = prometheus_client.CollectorRegistry(auto_describe=True)
    labels = ["deployment", "variant"]

    def counter(name: str, doc: str) -> Any:
        return prometheus_client.Counter(name, doc, labels, registry=registry)

    return RouterMetrics(
        registry=registry,
        deployment=deployment,
        requests=counter("modelpilot_router_requests", "Requests routed to the variant."),
        errors=counter("modelpilot_router_errors", "Requests the variant failed (5xx, timeout)."),
        latency=prometheus_client.Histogram(
            "modelpilot_router_latency_seconds",
            "Time to answer through the variant.",
            labels,
            buckets=LATENCY_BUCKETS,
            registry=registry,
        ),
        fallbacks=counter(
            "modelpilot_router_fallbacks", "Challenger failures answered by the stable variant."
        ),
        rewards=counter("modelpilot_router_rewards", "Delayed rewards joined to the variant."),
        reward_sum=counter(
            "modelpilot_router_reward_sum",
            "Sum of the non-negative joined reward values (minus negative_reward_sum: the sum).",
        ),
        negative_reward_sum=counter(
            "modelpilot_router_negative_reward_sum",
            "Sum of the absolute values of the negative joined rewards.",
        ),
        reward_sum_squares=counter(
            "modelpilot_router_reward_sum_squares", "Sum of the squared joined reward values."
        ),
        weight=prometheus_client.Gauge(
            "modelpilot_router_route_weight",
            "Weight in force (0..100).",
            labels,
            registry=registry,
        ),
        routes_rejected=prometheus_client.Counter(
            "modelpilot_router_routes_rejected",
            "Routes documents the router could not use (the last good routes stayed in force).",
            ["deployment"],
            registry=registry,
        ).labels(deployment),
    )

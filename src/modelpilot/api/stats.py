"""The router's `GET /stats` document: per-variant counters the experiment loop reads.

One typed model, two sides: the router writes `Stats(...).to_json()` (`modelpilot.router.proxy`),
the operator's `/stats` source reads it back with `parse`
(`modelpilot.operator.experiment.sources`), and neither side spells a key by hand. The shape
(snake_case, as every service answer is):

    {"deployment": "iris", "policy": "thompson", "routes_version": 3,
     "variants": {"stable": {"weight": 80, "requests": 1000, "errors": 2, "error_rate": 0.002,
                             "fallbacks": 0, "rewards": 400, "reward_sum": 123.0,
                             "reward_sum_squares": 97.5, "latency_p50_ms": 3.1,
                             "latency_p95_ms": 8.0, "latency_p99_ms": 21.5,
                             "latency_window": 1000}, ...}}

Counters are cumulative since the router started. Design decision: a counter a router does not
report reads as its default (0), but the sum of squared rewards reads as None (unknown), never as
0: a router of a version before sums of squares must not claim a zero variance.

Errors: `parse` raises `InvalidStats` (an `InputError`) naming the variant and the field
(`variants.stable.requests: ...`). Pure.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from modelpilot import errors


class InvalidStats(errors.InputError):
    """A `/stats` document that does not follow the contract; the message names the field."""


@dataclass(frozen=True)
class VariantStats:
    """One variant's cumulative counters at one router."""

    requests: int = 0
    errors: int = 0
    fallbacks: int = 0
    """Requests a failed challenger passed on to the stable variant."""
    rewards: int = 0
    reward_sum: float = 0.0
    reward_sum_squares: float | None = None
    """None: the router does not report it (unknown, not 0)."""
    latency_p50_ms: float | None = None
    latency_p95_ms: float | None = None
    latency_p99_ms: float | None = None
    """Quantiles over the router's ring of recent latencies; None before the first request."""
    latency_window: int = 0
    """How many latencies the quantiles are taken over."""
    weight: float | None = None
    """The weight of the routes in force; None for a variant no longer in them."""

    @property
    def error_rate(self) -> float:
        return self.errors / self.requests if self.requests else 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "weight": self.weight,
            "requests": self.requests,
            "errors": self.errors,
            "error_rate": self.error_rate,
            "fallbacks": self.fallbacks,
            "rewards": self.rewards,
            "reward_sum": self.reward_sum,
            "reward_sum_squares": self.reward_sum_squares,
            "latency_p50_ms": self.latency_p50_ms,
            "latency_p95_ms": self.latency_p95_ms,
            "latency_p99_ms": self.latency_p99_ms,
            "latency_window": self.latency_window,
        }


@dataclass(frozen=True)
class Stats:
    """One router's `/stats`."""

    variants: Mapping[str, VariantStats] = field(default_factory=dict)
    deployment: str | None = None
    policy: str | None = None
    """The policy type of the routes in force (None before the first routes)."""
    routes_version: int | str | None = None
    """Counts the routes documents the router has taken (changes when new routes arrive)."""

    def to_json(self) -> dict[str, Any]:
        return {
            "deployment": self.deployment,
            "policy": self.policy,
            "routes_version": self.routes_version,
            "variants": {name: v.to_json() for name, v in self.variants.items()},
        }


def _number(raw: Mapping[str, Any], key: str, *, where: str, default: float | None) -> float | None:
    value = raw.get(key, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidStats(f"{where}.{key}: expected a finite number, got {value!r}")
    return float(value)


def _count(raw: Mapping[str, Any], key: str, *, where: str) -> int:
    value = _number(raw, key, where=where, default=0)
    if value is None or value < 0:
        raise InvalidStats(f"{where}.{key}: expected a number >= 0, got {raw.get(key)!r}")
    return int(value)


def _variant(raw: Any, *, where: str) -> VariantStats:
    if not isinstance(raw, Mapping):
        raise InvalidStats(f"{where}: expected an object")
    squares = _number(raw, "reward_sum_squares", where=where, default=None)
    if squares is not None and squares < 0:
        raise InvalidStats(f"{where}.reward_sum_squares: expected a number >= 0, got {squares!r}")
    return VariantStats(
        requests=_count(raw, "requests", where=where),
        errors=_count(raw, "errors", where=where),
        fallbacks=_count(raw, "fallbacks", where=where),
        rewards=_count(raw, "rewards", where=where),
        reward_sum=_number(raw, "reward_sum", where=where, default=0.0) or 0.0,
        reward_sum_squares=squares,
        latency_p50_ms=_number(raw, "latency_p50_ms", where=where, default=None),
        latency_p95_ms=_number(raw, "latency_p95_ms", where=where, default=None),
        latency_p99_ms=_number(raw, "latency_p99_ms", where=where, default=None),
        latency_window=_count(raw, "latency_window", where=where),
        weight=_number(raw, "weight", where=where, default=None),
    )


def parse(doc: Any) -> Stats:
    """Validate a decoded `/stats` body; `InvalidStats` names the first bad field."""
    if not isinstance(doc, Mapping) or not isinstance(doc.get("variants"), Mapping):
        raise InvalidStats("expected a JSON object with 'variants'")
    deployment, policy, version = (
        doc.get("deployment"),
        doc.get("policy"),
        doc.get("routes_version"),
    )
    return Stats(
        variants={
            str(name): _variant(raw, where=f"variants.{name}")
            for name, raw in doc["variants"].items()
        },
        deployment=deployment if isinstance(deployment, str) else None,
        policy=policy if isinstance(policy, str) else None,
        routes_version=version if isinstance(version, int | str) else None,
    )

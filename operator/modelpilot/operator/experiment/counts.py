"""Cumulative per-variant counters from the routers, and their increments since the last update.

The routers' counters are cumulative and reset to zero when a router pod restarts. The metrics
sources therefore report counts *per source* (one router pod, one `/stats` URL, one Prometheus
series' instance), and the increment is taken per (source, variant), with Prometheus' `increase()`
rule for resets: a counter that went down has restarted from zero, so its whole new value is the
increment. Taking increments per source rather than on the sum is the one design decision here: a
single restarted pod would otherwise make the summed counter drop and lose (or, with the naive rule,
recount) every other pod's history. The last raw values seen are kept in the Experiment's status, so
an operator restart loses nothing.

A reset is recognised only by the monotone counters: requests, errors, rewards and the sum of
squared rewards. The sum of rewards is not one of them: a continuous reward may be negative, so
that sum may go down between two reads of a healthy router, and its increment may be negative.

A sum of squares is unknown (None) at a source that does not report it (a router of a version
before sums of squares, or raw counters stored by such an operator). An increment whose squares are
unknown keeps its rewards and their sum apart (`unsquared_rewards`, `unsquared_reward_sum`), so the
variance is estimated only from rewards whose squares are known, never from a sum of squares that
covers fewer rewards than the count beside it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from modelpilot import errors

COUNTERS = ("requests", "errors", "rewards")
"""The non-negative integer counters (besides them: rewardSum, any finite number, and
rewardSumSquares, a non-negative number or absent)."""


def _finite(raw: Mapping[str, Any], key: str, *, field: str, default: float | None) -> float | None:
    v = raw.get(key, default)
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise errors.InputError(f"{field}.{key}: must be a finite number, got {v!r}")
    return float(v)


@dataclass(frozen=True)
class VariantCounts:
    """Counters of one variant at one source (cumulative), or an increment of them."""

    requests: int = 0
    errors: int = 0
    rewards: int = 0
    reward_sum: float = 0.0
    latency_p99_ms: float | None = None
    """A gauge, not a counter: the source's latest p99 (None when it has no latency data)."""
    reward_sum_squares: float | None = None
    """Sum of the squared rewards; None when the source does not report it. In an increment: the
    sum over the rewards whose squares are known (never None)."""
    unsquared_rewards: int = 0
    """In an increment only: how many of `rewards` came without their squares."""
    unsquared_reward_sum: float = 0.0
    """In an increment only: the sum of those rewards."""

    def to_json(self) -> dict[str, float]:
        out: dict[str, float] = {
            "requests": self.requests,
            "errors": self.errors,
            "rewards": self.rewards,
            "rewardSum": self.reward_sum,
        }
        if self.reward_sum_squares is not None:
            out["rewardSumSquares"] = self.reward_sum_squares
        return out

    @classmethod
    def from_json(cls, raw: Mapping[str, Any], *, field: str) -> VariantCounts:
        """Raw counters as stored in `status.counters`; written by an operator of a version before
        sums of squares, they have no `rewardSumSquares`, which reads as unknown (None)."""
        values: dict[str, float] = {}
        for key in COUNTERS:
            v = raw.get(key, 0)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0:
                raise errors.InputError(f"{field}.{key}: must be a non-negative number, got {v!r}")
            values[key] = v
        reward_sum = _finite(raw, "rewardSum", field=field, default=0.0)
        squares = _finite(raw, "rewardSumSquares", field=field, default=None)
        if squares is not None and squares < 0:
            raise errors.InputError(
                f"{field}.rewardSumSquares: must be a non-negative number, got {squares!r}"
            )
        lat = raw.get("latencyP99Ms")
        if lat is not None and (isinstance(lat, bool) or not isinstance(lat, (int, float))):
            raise errors.InputError(f"{field}.latencyP99Ms: must be a number, got {lat!r}")
        return cls(
            requests=int(values["requests"]),
            errors=int(values["errors"]),
            rewards=int(values["rewards"]),
            reward_sum=reward_sum or 0.0,
            latency_p99_ms=None if lat is None else float(lat),
            reward_sum_squares=squares,
        )

    def __add__(self, other: VariantCounts) -> VariantCounts:
        """The sum of two increments (a sum of squares of None counts as 0 here)."""
        lats = [x for x in (self.latency_p99_ms, other.latency_p99_ms) if x is not None]
        return VariantCounts(
            requests=self.requests + other.requests,
            errors=self.errors + other.errors,
            rewards=self.rewards + other.rewards,
            reward_sum=self.reward_sum + other.reward_sum,
            # p99s cannot be merged exactly; the larger one is the conservative guardrail input.
            latency_p99_ms=max(lats) if lats else None,
            reward_sum_squares=(self.reward_sum_squares or 0.0) + (other.reward_sum_squares or 0.0),
            unsquared_rewards=self.unsquared_rewards + other.unsquared_rewards,
            unsquared_reward_sum=self.unsquared_reward_sum + other.unsquared_reward_sum,
        )


Observed = Mapping[str, Mapping[str, VariantCounts]]
"""source -> variant -> cumulative counters as last read."""


def is_reset(previous: VariantCounts, current: VariantCounts) -> bool:
    """A monotone counter went down: the source restarted from zero since `previous`.

    Never judged from the sum of rewards, which negative rewards may lower. The sum of squares only
    counts when both reads have it; a relative slack of 1e-12 keeps a float that was printed and
    parsed again (Prometheus' text, JSON) from passing for a reset.
    """
    if (
        current.requests < previous.requests
        or current.errors < previous.errors
        or current.rewards < previous.rewards
    ):
        return True
    before, now = previous.reward_sum_squares, current.reward_sum_squares
    return before is not None and now is not None and now < before * (1 - 1e-12)


def _whole(current: VariantCounts) -> VariantCounts:
    """Everything a source has counted, as an increment (its first read, or after a reset)."""
    return _increment(
        requests=current.requests,
        errors=current.errors,
        rewards=current.rewards,
        reward_sum=current.reward_sum,
        latency_p99_ms=current.latency_p99_ms,
        reward_sum_squares=current.reward_sum_squares,
    )


def _increment(
    *,
    requests: int,
    errors: int,
    rewards: int,
    reward_sum: float,
    latency_p99_ms: float | None,
    reward_sum_squares: float | None,
) -> VariantCounts:
    unknown = reward_sum_squares is None  # squares unknown: keep these rewards apart
    return VariantCounts(
        requests=requests,
        errors=errors,
        rewards=rewards,
        reward_sum=reward_sum,
        latency_p99_ms=latency_p99_ms,
        reward_sum_squares=0.0 if reward_sum_squares is None else reward_sum_squares,
        unsquared_rewards=rewards if unknown else 0,
        unsquared_reward_sum=reward_sum if unknown else 0.0,
    )


def increment(previous: VariantCounts | None, current: VariantCounts) -> VariantCounts:
    """What happened between two reads of one source's counters for one variant.

    A monotone counter that went down means the source restarted (see `is_reset`), so the whole
    current value is new, as Prometheus' `increase()` treats a reset. The sum of rewards changes by
    whatever it changed by, negative included. The squares of the increment are known only when
    both reads have a sum of squares.
    """
    if previous is None or is_reset(previous, current):
        return _whole(current)
    before, now = previous.reward_sum_squares, current.reward_sum_squares
    return _increment(
        requests=current.requests - previous.requests,
        errors=current.errors - previous.errors,
        rewards=current.rewards - previous.rewards,
        reward_sum=current.reward_sum - previous.reward_sum,
        latency_p99_ms=current.latency_p99_ms,
        # max(): within is_reset's rounding slack the difference may come out a hair below 0.
        reward_sum_squares=None if before is None or now is None else max(0.0, now - before),
    )


def increments(
    previous: Observed, current: Observed, *, variants: tuple[str, ...]
) -> dict[str, VariantCounts]:
    """Per-variant increments summed over sources; variants outside `variants` are ignored.

    A source absent from `current` (a scrape failed, a pod went away) contributes nothing; its last
    values stay in `previous` (see `merge_observed`) so that a later read is not counted twice.
    """
    out = {name: VariantCounts(reward_sum_squares=0.0) for name in variants}
    for source, per_variant in current.items():
        before = previous.get(source, {})
        for name, counts in per_variant.items():
            if name in out:
                out[name] = out[name] + increment(before.get(name), counts)
    return out


def merge_observed(previous: Observed, current: Observed) -> dict[str, dict[str, VariantCounts]]:
    """The last value seen of every (source, variant): `current` over `previous`."""
    merged = {source: dict(per) for source, per in previous.items()}
    for source, per in current.items():
        merged.setdefault(source, {}).update(per)
    return merged


def observed_to_json(observed: Observed) -> dict[str, dict[str, dict[str, float]]]:
    return {
        source: {name: c.to_json() for name, c in sorted(per.items())}
        for source, per in sorted(observed.items())
    }


def observed_from_json(raw: object, *, field: str) -> dict[str, dict[str, VariantCounts]]:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise errors.InputError(f"{field}: must be an object of sources")
    out: dict[str, dict[str, VariantCounts]] = {}
    for source, per in raw.items():
        if not isinstance(per, Mapping):
            raise errors.InputError(f"{field}.{source}: must be an object of variants")
        out[str(source)] = {
            str(name): VariantCounts.from_json(c, field=f"{field}.{source}.{name}")
            for name, c in per.items()
        }
    return out

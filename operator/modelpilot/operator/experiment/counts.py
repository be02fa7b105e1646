"""Cumulative per-variant counters from the routers, and their increments since the last update.

The routers' counters are cumulative and reset to zero when a router pod restarts. The metrics
sources therefore report counts *per source* (one router pod, one `/stats` URL, one Prometheus
series' instance), and the increment is taken per (source, variant), with Prometheus' `increase()`
rule for resets: a counter that went down has restarted from zero, so its whole new value is the
increment. Taking increments per source rather than on the sum is the one design decision here: a
single restarted pod would otherwise make the summed counter drop and lose (or, with the naive rule,
recount) every other pod's history. The last raw values seen are kept in the Experiment's status, so
an operator restart loses nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from modelpilot import errors

FIELDS = ("requests", "errors", "rewards", "rewardSum")


@dataclass(frozen=True)
class VariantCounts:
    """Counters of one variant at one source (cumulative), or an increment of them."""

    requests: int = 0
    errors: int = 0
    rewards: int = 0
    reward_sum: float = 0.0
    latency_p99_ms: float | None = None
    """A gauge, not a counter: the source's latest p99 (None when it has no latency data)."""

    def to_json(self) -> dict[str, float]:
        return {
            "requests": self.requests,
            "errors": self.errors,
            "rewards": self.rewards,
            "rewardSum": self.reward_sum,
        }

    @classmethod
    def from_json(cls, raw: Mapping[str, Any], *, field: str) -> VariantCounts:
        values: dict[str, float] = {}
        for key in FIELDS:
            v = raw.get(key, 0)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0:
                raise errors.InputError(f"{field}.{key}: must be a non-negative number, got {v!r}")
            values[key] = v
        lat = raw.get("latencyP99Ms")
        if lat is not None and (isinstance(lat, bool) or not isinstance(lat, (int, float))):
            raise errors.InputError(f"{field}.latencyP99Ms: must be a number, got {lat!r}")
        return cls(
            requests=int(values["requests"]),
            errors=int(values["errors"]),
            rewards=int(values["rewards"]),
            reward_sum=float(values["rewardSum"]),
            latency_p99_ms=None if lat is None else float(lat),
        )

    def __add__(self, other: VariantCounts) -> VariantCounts:
        lats = [x for x in (self.latency_p99_ms, other.latency_p99_ms) if x is not None]
        return VariantCounts(
            requests=self.requests + other.requests,
            errors=self.errors + other.errors,
            rewards=self.rewards + other.rewards,
            reward_sum=self.reward_sum + other.reward_sum,
            # p99s cannot be merged exactly; the larger one is the conservative guardrail input.
            latency_p99_ms=max(lats) if lats else None,
        )


Observed = Mapping[str, Mapping[str, VariantCounts]]
"""source -> variant -> cumulative counters as last read."""


def increment(previous: VariantCounts | None, current: VariantCounts) -> VariantCounts:
    """What happened between two reads of one source's counters for one variant.

    Any counter that went down means the source restarted (counters are monotone otherwise), so
    the whole current value is new, as Prometheus' `increase()` treats a reset.
    """
    if previous is None:
        return VariantCounts(
            current.requests,
            current.errors,
            current.rewards,
            current.reward_sum,
            current.latency_p99_ms,
        )
    reset = (
        current.requests < previous.requests
        or current.errors < previous.errors
        or current.rewards < previous.rewards
        or current.reward_sum < previous.reward_sum - 1e-9
    )
    if reset:
        return increment(None, current)
    return VariantCounts(
        requests=current.requests - previous.requests,
        errors=current.errors - previous.errors,
        rewards=current.rewards - previous.rewards,
        reward_sum=max(0.0, current.reward_sum - previous.reward_sum),
        latency_p99_ms=current.latency_p99_ms,
    )


def increments(
    previous: Observed, current: Observed, *, variants: tuple[str, ...]
) -> dict[str, VariantCounts]:
    """Per-variant increments summed over sources; variants outside `variants` are ignored.

    A source absent from `current` (a scrape failed, a pod went away) contributes nothing; its last
    values stay in `previous` (see `merge_observed`) so that a later read is not counted twice.
    """
    out = {name: VariantCounts() for name in variants}
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

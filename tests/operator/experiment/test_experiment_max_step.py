"""`policy.maxStep`: the split moves toward the policy's by at most maxStep points per update.

Seeded simulations through the real `decide()`, as
tests/operator/experiment/test_experiment_decision.py drives it, plus the pure step on hand-made
splits.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from modelpilot import errors
from modelpilot.operator.experiment import decision, simulate
from modelpilot.operator.experiment import spec as spec_mod

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _spec(**policy: Any) -> dict[str, Any]:
    return {
        "deploymentRef": "iris",
        "variants": [{"name": "challenger", "model": {"name": "iris", "version": "4"}}],
        "policy": {"type": "thompson", "minWeight": 5, "maxWeight": 95, **policy},
        "reward": {"type": "binary"},
        "stopping": {"minSamplesPerVariant": 100_000, "probabilityToBeBest": 0.95},
        "onSuccess": "promote",
    }


def _challenger_weights(raw: dict[str, Any], *, intervals: int, seed: int) -> list[int]:
    spec = spec_mod.parse_spec(raw)
    status = decision.initial_status(spec, stable_model={"name": "iris", "version": "3"}, now=T0)
    traffic = simulate.Traffic(
        reward_rates={"stable": 0.72, "challenger": 0.91}, requests_per_interval=400, seed=seed
    )
    in_force: dict[str, float] | None = None
    out = []
    for i in range(intervals + 1):
        if in_force is not None:
            traffic.step(in_force)
        outcome = decision.decide(
            spec,
            status,
            counts=traffic.counts() if i else {},
            shares_in_force=in_force,
            now=T0 + timedelta(seconds=30 * i),
            seed_key="default/exp",
        )
        status = outcome.status
        weights = {v["name"]: v["weight"] for v in status["variants"]}
        in_force = {k: float(w) for k, w in weights.items()}
        out.append(int(weights["challenger"]))
    return out


def test_without_max_step_a_clear_winner_jumps_to_the_ceiling_at_the_first_update() -> None:
    w = _challenger_weights(_spec(), intervals=3, seed=1)
    assert w[0] == 50
    assert w[1] == 95


@pytest.mark.parametrize("seed", range(5))
def test_with_max_step_15_the_split_climbs_in_steps_of_at_most_15_points(seed: int) -> None:
    w = _challenger_weights(_spec(maxStep=15), intervals=6, seed=seed)
    steps = [b - a for a, b in itertools.pairwise(w)]
    assert all(abs(s) <= 15 + 1 for s in steps), w  # +1: largest-remainder rounding
    assert w[:4] == [50, 65, 80, 95], w
    assert w[-1] == 95


def test_a_step_never_leaves_the_bounds_and_always_sums_to_100() -> None:
    spec = spec_mod.parse_spec(_spec(maxStep=7))
    for previous, target in [
        ({"stable": 50, "challenger": 50}, {"stable": 5, "challenger": 95}),
        ({"stable": 95, "challenger": 5}, {"stable": 5, "challenger": 95}),
        ({"stable": 40, "challenger": 60}, {"stable": 45, "challenger": 55}),
    ]:
        got = decision._stepped(spec, ["stable", "challenger"], previous, target)
        assert sum(got.values()) == 100
        assert all(5 <= w <= 95 for w in got.values())
        assert max(abs(got[n] - previous[n]) for n in got) <= 8
        # Toward the target, never past it.
        for n in got:
            lo, hi = sorted((previous[n], target[n]))
            assert lo <= got[n] <= hi


def test_a_rolled_back_variant_leaves_the_split_at_once_whatever_max_step_says() -> None:
    spec = spec_mod.parse_spec(_spec(maxStep=5))
    got = decision._stepped(
        spec, ["stable"], {"stable": 40, "challenger": 60}, {"stable": 100, "challenger": 0}
    )
    assert got == {"stable": 100, "challenger": 0}


@pytest.mark.parametrize("bad", [0, 101, 2.5, "10"])
def test_a_max_step_outside_1_to_100_is_refused_naming_the_field(bad: object) -> None:
    with pytest.raises(errors.InputError, match=r"spec\.policy\.maxStep"):
        spec_mod.parse_spec(_spec(maxStep=bad))

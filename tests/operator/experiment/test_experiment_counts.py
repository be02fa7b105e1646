"""Increments of the routers' cumulative counters: resets, negative rewards, sums of squares; and
what the StatsSource reads of a router's `/stats` (its parsing is pure)."""

from __future__ import annotations

import math

import pytest

from modelpilot import errors
from modelpilot.operator.experiment import counts, sources


def test_a_reward_sum_that_goes_down_is_a_negative_increment_not_a_reset() -> None:
    before = counts.VariantCounts(requests=10, rewards=5, reward_sum=2.0, reward_sum_squares=9.0)
    # Five more rewards, summing to -5 (a loss): the sum falls below zero, the counts go on.
    after = counts.VariantCounts(requests=20, rewards=10, reward_sum=-3.0, reward_sum_squares=30.0)
    assert not counts.is_reset(before, after)
    got = counts.increment(before, after)
    assert (got.requests, got.rewards, got.reward_sum, got.reward_sum_squares) == (
        10,
        5,
        -5.0,
        21.0,
    )
    assert got.unsquared_rewards == 0


def test_a_restarted_router_is_recognised_by_its_monotone_counters_whatever_its_reward_sum() -> (
    None
):
    before = counts.VariantCounts(requests=100, rewards=50, reward_sum=-40.0, reward_sum_squares=90)
    # Restarted: fewer requests and rewards; the (negative) reward sum happens to be higher.
    after = counts.VariantCounts(requests=30, rewards=12, reward_sum=-1.0, reward_sum_squares=20.0)
    assert counts.is_reset(before, after)
    got = counts.increment(before, after)
    assert (got.requests, got.rewards, got.reward_sum, got.reward_sum_squares) == (
        30,
        12,
        -1.0,
        20.0,
    )
    # A sum of squares that went down is a reset too, even when the counts have caught up.
    caught_up = counts.VariantCounts(
        requests=120, rewards=55, reward_sum=3.0, reward_sum_squares=60
    )
    assert counts.is_reset(before, caught_up)
    assert counts.increment(before, caught_up).rewards == 55


def test_negative_rewards_summed_over_sources_are_counted_exactly() -> None:
    previous = {
        "r-0": {
            "v": counts.VariantCounts(
                requests=10, rewards=10, reward_sum=-5.0, reward_sum_squares=5
            )
        },
        "r-1": {
            "v": counts.VariantCounts(requests=10, rewards=10, reward_sum=1.0, reward_sum_squares=3)
        },
    }
    current = {
        "r-0": {
            "v": counts.VariantCounts(
                requests=30, rewards=25, reward_sum=-20.0, reward_sum_squares=40
            )
        },
        "r-1": {
            "v": counts.VariantCounts(requests=12, rewards=12, reward_sum=0.5, reward_sum_squares=4)
        },
    }
    got = counts.increments(previous, current, variants=("v",))["v"]
    assert (got.requests, got.rewards, got.reward_sum, got.reward_sum_squares) == (
        22,
        17,
        -15.5,
        36.0,
    )


def test_counters_stored_before_sums_of_squares_load_and_their_next_increment_has_no_squares() -> (
    None
):
    # status.counters as the previous version wrote them: no rewardSumSquares, a negative sum.
    stored = {
        "router-0": {"stable": {"requests": 40, "errors": 0, "rewards": 30, "rewardSum": -7.5}}
    }
    previous = counts.observed_from_json(stored, field="status.counters")
    assert previous["router-0"]["stable"].reward_sum_squares is None
    assert previous["router-0"]["stable"].reward_sum == -7.5
    # The same router, now reporting squares: what it reports covers rewards from before too, so
    # the squares of this increment are unknown and its rewards are kept apart.
    now = {"router-0": {"stable": counts.VariantCounts(50, 0, 36, -9.0, None, 120.0)}}
    got = counts.increments(previous, now, variants=("stable",))["stable"]
    assert (got.rewards, got.reward_sum, got.reward_sum_squares) == (6, -1.5, 0.0)
    assert (got.unsquared_rewards, got.unsquared_reward_sum) == (6, -1.5)
    # From then on the stored counters have squares and the increments are known.
    merged = counts.observed_from_json(
        counts.observed_to_json(counts.merge_observed(previous, now)), field="status.counters"
    )
    later = {"router-0": {"stable": counts.VariantCounts(60, 0, 40, -8.0, None, 125.0)}}
    got = counts.increments(merged, later, variants=("stable",))["stable"]
    assert (got.rewards, got.reward_sum, got.reward_sum_squares, got.unsquared_rewards) == (
        4,
        1.0,
        5.0,
        0,
    )


def test_a_router_that_reports_no_squares_gives_increments_without_squares() -> None:
    old = counts.VariantCounts(requests=10, rewards=8, reward_sum=4.0)
    got = counts.increments({}, {"r": {"v": old}}, variants=("v", "w"))
    assert (got["v"].unsquared_rewards, got["v"].unsquared_reward_sum) == (8, 4.0)
    assert got["v"].reward_sum_squares == 0.0
    assert got["w"] == counts.VariantCounts(reward_sum_squares=0.0)


def test_raw_counters_round_trip_through_json_with_and_without_squares() -> None:
    with_squares = counts.VariantCounts(3, 1, 2, -0.5, None, 0.25)
    without = counts.VariantCounts(3, 1, 2, -0.5)
    assert "rewardSumSquares" not in without.to_json()
    for c in (with_squares, without):
        assert counts.VariantCounts.from_json(c.to_json(), field="f") == c


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        ({"rewards": -1}, "rewards"),
        ({"rewardSum": math.nan}, "rewardSum"),
        ({"rewardSum": "3"}, "rewardSum"),
        ({"rewardSumSquares": -2.0}, "rewardSumSquares"),
        ({"rewardSumSquares": math.inf}, "rewardSumSquares"),
    ],
)
def test_a_bad_stored_counter_is_refused_naming_it(raw: dict[str, object], key: str) -> None:
    with pytest.raises(errors.InputError, match=rf"^f\.{key}: "):
        counts.VariantCounts.from_json(raw, field="f")


def _stats_variant(**extra: object) -> dict[str, object]:
    return {"requests": 100, "errors": 2, "rewards": 50, "reward_sum": -7.25, **extra}


def test_the_stats_source_reads_the_sum_of_squares_and_a_negative_reward_sum() -> None:
    doc = {
        "variants": {
            "stable": _stats_variant(reward_sum_squares=412.5, latency_p99_ms=21.5),
            # A router of a version before sums of squares: unknown, not 0.
            "challenger": _stats_variant(),
        }
    }
    got = sources.parse_stats(doc, where="GET x")
    assert got["stable"] == counts.VariantCounts(100, 2, 50, -7.25, 21.5, 412.5)
    assert got["challenger"] == counts.VariantCounts(100, 2, 50, -7.25, None, None)
    doc["variants"]["stable"]["reward_sum_squares"] = -1.0
    with pytest.raises(sources.SourceError, match=r"stable\.reward_sum_squares"):
        sources.parse_stats(doc, where="GET x")

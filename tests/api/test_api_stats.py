"""The router's /stats is one contract: the router's tallies as written, the operator's as read."""

from __future__ import annotations

import json

import pytest

from modelpilot.api import stats as contract
from modelpilot.operator.experiment import counts, sources
from modelpilot.router import tally


def test_what_a_router_tally_writes_reads_back_unchanged() -> None:
    t = tally.VariantTally(requests=10, errors=1, fallbacks=2, rewards=4, reward_sum=2.5)
    t.reward_sum_squares = 1.75
    for ms in (1, 2, 3, 4):
        t.latency(ms / 1000)
    doc = json.loads(json.dumps(contract.Stats(variants={"stable": t.stats(weight=80)}).to_json()))
    parsed = contract.parse(doc)
    assert parsed.variants["stable"] == t.stats(weight=80)
    assert doc["variants"]["stable"]["error_rate"] == pytest.approx(0.1)
    assert sources.parse_stats(doc, where="GET x")["stable"] == counts.VariantCounts(
        requests=10,
        errors=1,
        rewards=4,
        reward_sum=2.5,
        latency_p99_ms=parsed.variants["stable"].latency_p99_ms,
        reward_sum_squares=1.75,
    )


def test_a_missing_sum_of_squares_is_unknown_not_zero() -> None:
    parsed = contract.parse({"variants": {"stable": {"requests": 3, "rewards": 2}}})
    assert parsed.variants["stable"].reward_sum_squares is None
    assert parsed.variants["stable"].reward_sum == 0.0


@pytest.mark.parametrize(
    ("variant", "field"),
    [
        ({"requests": -1}, "variants.stable.requests"),
        ({"errors": "many"}, "variants.stable.errors"),
        ({"reward_sum": float("nan")}, "variants.stable.reward_sum"),
        ({"reward_sum_squares": -1.0}, "variants.stable.reward_sum_squares"),
        ("nope", "variants.stable"),
    ],
)
def test_a_bad_stats_document_is_refused_naming_the_field(variant: object, field: str) -> None:
    with pytest.raises(contract.InvalidStats) as info:
        contract.parse({"variants": {"stable": variant}})
    assert str(info.value).startswith(field)

"""The router's pure parts: routes validation, the per-request policy, request-id tokens, the
in-process de-duplication, reward checks, and the reward tallies of `proxy.Router.feedback` (in
process, no backend needed).

Statistical claims are checked against exact binomial intervals (scipy) and the posterior's
probability to be best (modelpilot.stats.bandits, itself tested against closed forms).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import math
import os
import time

import numpy as np
import prometheus_client.parser
import pytest
import scipy.stats

from modelpilot import errors
from modelpilot.router import dedup, feedback, policy, proxy, routes, settings, tokens
from modelpilot.stats import bandits


def _doc(
    policy_type: str = "fixed", weights: tuple[float, float] = (80, 20), **extra: object
) -> dict[str, object]:
    return {
        "deployment": "iris",
        "stable": "stable",
        "policy": {"type": policy_type, "epsilon": 0.1, "stickyHeader": None, **extra},
        "variants": [
            {
                "name": "stable",
                "url": "http://a:80",
                "weight": weights[0],
                "modelVersion": "3",
                "posterior": {"alpha": 1.0, "beta": 1.0},
            },
            {
                "name": "challenger",
                "url": "http://b:80",
                "weight": weights[1],
                "modelVersion": "4",
                "posterior": {"alpha": 1.0, "beta": 1.0},
            },
        ],
    }


def test_the_documented_routes_example_parses() -> None:
    parsed = routes.load_routes(json.dumps(_doc("thompson")))
    assert parsed.stable == "stable"
    assert [v.name for v in parsed.variants] == ["stable", "challenger"]
    assert parsed.variant("challenger").model_version == "4"
    assert parsed.variant("stable").posterior == routes.Beta(1.0, 1.0)


@pytest.mark.parametrize(
    ("mutate", "fragment"),
    [
        (lambda d: d.update(policy={"type": "random"}), "routes.policy.type"),
        (lambda d: d.update(stable="nope"), "routes.stable"),
        (lambda d: d["variants"][1].update(url="ftp://x"), "routes.variants[1].url"),
        (lambda d: d["variants"][0].update(weight=150), "routes.variants[0].weight"),
        (lambda d: d["variants"][1].update(name="stable"), "appears twice"),
        (lambda d: d["variants"][0].update(posterior={"alpha": -1, "beta": 1}), "alpha"),
        (lambda d: d.update(variants=[]), "routes.variants"),
    ],
)
def test_an_invalid_routes_document_is_rejected_naming_the_field(
    mutate: object, fragment: str
) -> None:
    doc = _doc()
    mutate(doc)  # type: ignore[operator]
    with pytest.raises(errors.InputError, match=None) as info:
        routes.parse_routes(doc)
    assert fragment in str(info.value)


def _shares(chooser: policy.Chooser, n: int, key: object = None) -> np.ndarray:
    picks = [chooser.choose(None) for _ in range(n)]
    return np.bincount(picks, minlength=len(chooser.names))


def test_fixed_weights_give_shares_inside_their_99_percent_binomial_intervals() -> None:
    chooser = policy.Chooser(routes.parse_routes(_doc()), rng=np.random.default_rng(7))
    counts = _shares(chooser, 20_000)
    low, high = scipy.stats.binom.interval(0.99, 20_000, 0.8)
    assert low <= counts[0] <= high


def test_a_zero_weight_variant_is_never_chosen() -> None:
    chooser = policy.Chooser(
        routes.parse_routes(_doc(weights=(0, 100))), rng=np.random.default_rng(1)
    )
    assert _shares(chooser, 2_000)[0] == 0


def _thompson_doc(posteriors: list[tuple[float, float]], *, floor: int, ceiling: int) -> dict:
    """A routes document as the operator writes it under thompson: weights = P(best), bounded."""
    p_best = bandits.probability_to_be_best(
        [a for a, _ in posteriors],
        [b for _, b in posteriors],
        draws=400_000,
        rng=np.random.default_rng(4),
    )
    weights = bandits.bounded_weights(p_best, floor=floor, ceiling=ceiling)
    doc = _doc("thompson", weights=(weights[0], weights[1]))
    for variant, (a, b) in zip(doc["variants"], posteriors, strict=True):  # type: ignore[call-overload]
        variant["posterior"] = {"alpha": a, "beta": b}
    return doc


def test_thompson_shares_match_the_posterior_probability_to_be_best() -> None:
    posteriors = [(30.0, 70.0), (36.0, 64.0)]
    chooser = policy.Chooser(
        routes.parse_routes(_thompson_doc(posteriors, floor=0, ceiling=100)),
        rng=np.random.default_rng(3),
    )
    n = 20_000
    counts = _shares(chooser, n)
    p_best = bandits.probability_to_be_best(
        [30.0, 36.0], [70.0, 64.0], draws=400_000, rng=np.random.default_rng(5)
    )
    assert 0.7 < p_best[1] < 0.95  # the challenger is favoured, not certain
    # The operator rounds to whole percent: allow that half-point beside the 99% interval.
    low, _ = scipy.stats.binom.interval(0.99, n, p_best[1] - 0.005)
    _, high = scipy.stats.binom.interval(0.99, n, p_best[1] + 0.005)
    assert low <= counts[1] <= high


def test_thompson_keeps_the_floor_for_a_variant_the_posterior_has_all_but_ruled_out() -> None:
    # P(stable is best) is below 1e-6 here: a per-request posterior draw would starve it, the
    # operator's floor of 5 % keeps it sampled so minSamplesPerVariant can be reached.
    posteriors = [(100.0, 900.0), (200.0, 800.0)]
    doc = _thompson_doc(posteriors, floor=5, ceiling=95)
    assert [v["weight"] for v in doc["variants"]] == [5, 95]  # type: ignore[index]
    chooser = policy.Chooser(routes.parse_routes(doc), rng=np.random.default_rng(6))
    n = 20_000
    low, high = scipy.stats.binom.interval(0.99, n, 0.05)
    assert low <= _shares(chooser, n)[0] <= high


def test_epsilon_greedy_sends_the_operators_epsilon_share_to_the_worse_arm() -> None:
    means = [0.5, 0.6]
    shares = bandits.epsilon_greedy_weights(means, epsilon=0.1)
    weights = bandits.bounded_weights(shares, floor=0, ceiling=100)
    assert weights == [5, 95]
    chooser = policy.Chooser(
        routes.parse_routes(_doc("epsilon-greedy", weights=(weights[0], weights[1]))),
        rng=np.random.default_rng(5),
    )
    n = 20_000
    counts = _shares(chooser, n)
    low, high = scipy.stats.binom.interval(0.99, n, 0.1 / 2)
    assert low <= counts[0] <= high


def test_a_sticky_key_always_lands_on_the_same_variant_and_keys_split_by_weight() -> None:
    chooser = policy.Chooser(
        routes.parse_routes(_doc("thompson", stickyHeader="x-user")), rng=np.random.default_rng(0)
    )
    first = {f"user-{i}": chooser.choose(f"user-{i}") for i in range(5_000)}
    again = {k: chooser.choose(k) for k in first}
    assert first == again
    to_stable = sum(1 for v in first.values() if v == 0)
    low, high = scipy.stats.binom.interval(0.99, 5_000, 0.8)
    assert low <= to_stable <= high


_B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def _signer(key: bytes = b"k" * 32, deployment: str = "iris") -> tokens.Signer:
    return tokens.Signer(key, deployment=deployment, random=os.urandom)


def test_a_request_id_carries_its_variant_and_verifies_only_unaltered_and_within_the_ttl() -> None:
    signer = _signer()
    token = signer.issue("challenger", answered=True, now_ms=1_000)
    claims = signer.verify(token, now_ms=2_000, ttl_ms=60_000)
    assert (claims.variant, claims.answered, claims.issued_ms) == ("challenger", True, 1_000)
    assert len(token) <= tokens.MAX_TOKEN_CHARS
    assert not signer.verify(
        signer.issue("stable", answered=False, now_ms=1_000), now_ms=1_000, ttl_ms=1
    ).answered
    with pytest.raises(tokens.TokenError, match="TTL"):
        signer.verify(token, now_ms=61_001, ttl_ms=60_000)
    head, mac = token.split(".")
    for forged in (
        head[:-1] + ("A" if head[-1] != "A" else "B") + "." + mac,  # another payload
        head + "." + mac[:-1] + ("A" if mac[-1] != "A" else "B"),  # another tag
        # The same bytes spelled otherwise: the tag's last base64 character has 4 unused bits.
        head + "." + mac[:-1] + _B64[_B64.index(mac[-1]) ^ 1],
        head,
        "",
        "x" * 5000,
        "..",
    ):
        with pytest.raises(tokens.TokenError):
            signer.verify(forged, now_ms=2_000, ttl_ms=60_000)
    # Another key, or another deployment under the same key: not ours.
    for other in (_signer(b"q" * 32), _signer(deployment="wine")):
        with pytest.raises(tokens.TokenError):
            other.verify(token, now_ms=2_000, ttl_ms=60_000)


@pytest.mark.parametrize("key", [b"k" * 16, b"k" * 32, b"z" * 100])
def test_the_request_id_tag_is_hmac_sha256_of_the_deployment_and_payload(key: bytes) -> None:
    token = _signer(key).issue("stable", answered=True, now_ms=7)
    head, mac = token.split(".")
    payload = base64.urlsafe_b64decode(head + "=" * (-len(head) % 4))
    expected = hmac.digest(key, b"iris\0" + payload, hashlib.sha256)[: tokens.MAC_BYTES]
    assert base64.urlsafe_b64decode(mac + "=" * (-len(mac) % 4)) == expected


def test_request_ids_never_repeat_and_share_no_guessable_part() -> None:
    signer = _signer()
    ids = [signer.issue("stable", answered=True, now_ms=5) for _ in range(10_000)]
    nonces = {signer.verify(t, now_ms=5, ttl_ms=1).nonce for t in ids}
    assert len(set(ids)) == len(nonces) == 10_000


async def test_the_in_process_dedup_says_first_once_per_id_within_the_ttl_and_stays_bounded() -> (
    None
):
    clock = [0.0]
    seen = dedup.MemoryDedup(max_entries=100, clock=lambda: clock[0])
    assert await seen.first("a", ttl_ms=10_000)
    assert not await seen.first("a", ttl_ms=10_000)
    clock[0] = 11.0
    assert await seen.first("a", ttl_ms=10_000)  # expired: forgotten
    for i in range(250):
        await seen.first(f"n{i}", ttl_ms=10_000)
    assert len(seen) == 100
    assert seen.evicted == 151  # "a" and the 150 oldest, pushed out by the bound


@pytest.mark.parametrize(
    ("value", "declared", "fragment"),
    [
        ("1", None, "JSON number"),
        (True, None, "JSON number"),
        (None, None, "JSON number"),
        (10**400, None, "finite"),
        (math.inf, None, "finite"),
        (math.nan, None, "finite"),
        (1.7e308, None, "MODELPILOT_ROUTER_REWARD_LIMIT"),
        (0.5, routes.Reward(type="binary"), "binary"),
        (2, routes.Reward(type="binary"), "binary"),
        (-11, routes.Reward(type="continuous", minimum=-10, maximum=10), "range"),
        (1e7, routes.Reward(type="continuous", minimum=-10), "REWARD_LIMIT"),
    ],
)
def test_a_reward_outside_the_declared_kind_is_refused_naming_the_field(
    value: object, declared: routes.Reward | None, fragment: str
) -> None:
    with pytest.raises(feedback.RewardError) as info:
        feedback.check_reward(value, declared, limit=1e6)
    assert str(info.value).startswith("reward: ")
    assert fragment in str(info.value)


@pytest.mark.parametrize(
    ("value", "declared"),
    [
        (0, routes.Reward(type="binary")),
        (1.0, routes.Reward(type="binary")),
        (-10, routes.Reward(type="continuous", minimum=-10, maximum=10)),
        (-1e6, None),
        (12.5, routes.Reward(type="continuous")),
    ],
)
def test_a_reward_of_the_declared_kind_is_taken_as_a_float(
    value: float, declared: routes.Reward | None
) -> None:
    assert feedback.check_reward(value, declared, limit=1e6) == float(value)


def _samples(exposition: bytes) -> dict[tuple[str, str], float]:
    """(sample name, variant) -> value of every sample of the router's /metrics text."""
    return {
        (s.name, s.labels.get("variant", "")): s.value
        for family in prometheus_client.parser.text_string_to_metric_families(exposition.decode())
        for s in family.samples
    }


async def test_feedback_adds_each_reward_to_count_sum_and_sum_of_squares_in_stats_and_metrics() -> (
    None
):
    router = proxy.Router(settings.RouterSettings(deployment="iris", feedback_key="k" * 32))
    router.set_routes(routes.parse_routes(_doc()))
    assert router.signer is not None
    rewards = [2.5, -4.0, 0.5, 1e-3, -0.25]
    ids = [router.signer.issue("challenger", answered=True, now_ms=_now_ms()) for _ in rewards]
    for rid, reward in zip(ids, rewards, strict=True):
        assert (await router.feedback(rid, reward))["status"] == "joined"
    # A duplicate changes nothing.
    assert (await router.feedback(ids[0], 100.0))["status"] == "duplicate"

    stats = router.stats()["variants"]["challenger"]
    assert stats["rewards"] == len(rewards)
    assert stats["reward_sum"] == pytest.approx(math.fsum(rewards), abs=1e-12)
    assert stats["reward_sum_squares"] == pytest.approx(math.fsum(r * r for r in rewards))

    # /metrics: every series monotone; the signed sum is reward_sum - negative_reward_sum.
    got = _samples(router.metrics.exposition())
    positive = got[("modelpilot_router_reward_sum_total", "challenger")]
    negative = got[("modelpilot_router_negative_reward_sum_total", "challenger")]
    assert positive == pytest.approx(math.fsum(r for r in rewards if r >= 0))
    assert negative == pytest.approx(math.fsum(-r for r in rewards if r < 0))
    assert positive - negative == pytest.approx(stats["reward_sum"], abs=1e-12)
    assert got[("modelpilot_router_reward_sum_squares_total", "challenger")] == pytest.approx(
        stats["reward_sum_squares"]
    )
    assert got[("modelpilot_router_rewards_total", "challenger")] == len(rewards)


def _now_ms() -> int:
    return int(time.time() * 1000)

"""The Experiment decision, driven by seeded simulations of router traffic with delayed rewards.

Each loop is what the operator does every `policy.updateInterval`: read the cumulative counters,
decide, write the status and the weights, and let the routers split the next interval's traffic by
those weights. Probability to be best is checked against the closed form for two Beta arms.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest
from scipy import special
from scipy import stats as sps

from modelpilot.api import routes as routes_contract
from modelpilot.operator.builders import routes
from modelpilot.operator.experiment import decision, inforce, simulate
from modelpilot.operator.experiment import spec as spec_mod

T0 = datetime(2026, 1, 1, tzinfo=UTC)
INTERVAL = timedelta(seconds=30)
STABLE_MODEL = {"name": "iris-classifier", "version": "3"}


def make_spec(**overrides: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "deploymentRef": "iris",
        "variants": [{"name": "challenger", "model": {"name": "iris-classifier", "version": "4"}}],
        "policy": {"type": "thompson", "minWeight": 5, "maxWeight": 90, "updateInterval": "30s"},
        "reward": {"type": "binary"},
        "stopping": {"minSamplesPerVariant": 1000, "probabilityToBeBest": 0.95},
        "guardrails": {"maxErrorRate": 0.02, "maxLatencyP99Ms": 250},
        "onSuccess": "promote",
    }
    for key, value in overrides.items():
        spec[key] = {**spec[key], **value} if isinstance(value, dict) else value
    return spec


@dataclass
class Run:
    statuses: list[dict[str, Any]] = field(default_factory=list)
    actions: list[tuple[decision.Action, ...]] = field(default_factory=list)

    @property
    def final(self) -> dict[str, Any]:
        return self.statuses[-1]

    def weights(self, variant: str) -> list[int]:
        return [_variant(s, variant)["weight"] for s in self.statuses]


def _variant(status: Mapping[str, Any], name: str) -> dict[str, Any]:
    found: dict[str, Any] = next(v for v in status["variants"] if v["name"] == name)
    return found


def run_experiment(
    raw_spec: dict[str, Any],
    traffic: simulate.Traffic,
    *,
    intervals: int,
    round_trip: bool = False,
    inject: Mapping[int, Any] | None = None,
) -> Run:
    """Drive the loop until a terminal phase or `intervals` updates; the routers split each
    interval's traffic by the operator's weights, as the router does under every policy."""
    spec = spec_mod.parse_spec(raw_spec)
    status = decision.initial_status(spec, stable_model=STABLE_MODEL, now=T0)
    outcome = decision.decide(
        spec, status, counts={}, shares_in_force=None, now=T0, seed_key="default/exp"
    )
    status = outcome.status
    in_force = _in_force(status)
    run = Run([status], [outcome.actions])
    for i in range(1, intervals + 1):
        if inject and i in inject:
            inject[i](traffic)
        traffic.step(in_force)
        if round_trip:  # an operator restart: nothing but what the API server stored survives
            status = as_stored(status)
        outcome = decision.decide(
            spec,
            status,
            counts=traffic.counts(),
            shares_in_force=in_force,
            now=T0 + i * INTERVAL,
            seed_key="default/exp",
        )
        status = outcome.status
        in_force = _in_force(status)
        run.statuses.append(status)
        run.actions.append(outcome.actions)
        if status["phase"] in decision.TERMINAL:
            break
    return run


def as_stored(value: Any) -> Any:
    """What the API server keeps of a status written by merge patch: JSON, nulls removed, and
    whole floats read back as integers (JSON does not tell 1.0 from 1)."""
    if isinstance(value, dict):
        return {k: as_stored(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [as_stored(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _in_force(status: Mapping[str, Any]) -> dict[str, float]:
    return {k: float(v) for k, v in _weights_of(status).items()}


def _weights_of(status: Mapping[str, Any]) -> dict[str, int]:
    return {v["name"]: v["weight"] for v in status["variants"]}


def p_b_beats_a(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Closed form of P(X_B > X_A) for independent Betas (Evan Miller, "Formulas for Bayesian A/B
    testing"): sum_{i<alpha_B} B(alpha_A+i, beta_A+beta_B) / ((beta_B+i) B(1+i, beta_B) B(alpha_A,
    beta_A)), exact for an integer alpha_B."""
    (aa, ba), (ab, bb) = a, b
    total = 0.0
    for i in range(int(ab)):
        total += math.exp(
            special.betaln(aa + i, ba + bb)
            - math.log(bb + i)
            - special.betaln(1 + i, bb)
            - special.betaln(aa, ba)
        )
    return total


def better_challenger(seed: int = 7) -> simulate.Traffic:
    return simulate.Traffic(
        reward_rates={"stable": 0.10, "challenger": 0.15},
        requests_per_interval=100,
        seed=seed,
        error_rates={"stable": 0.002, "challenger": 0.002},
        latency_p99_ms={"stable": 80.0, "challenger": 90.0},
    )


def test_a_better_challenger_gains_weight_step_by_step_and_is_promoted_once_certain() -> None:
    raw = make_spec()
    run = run_experiment(raw, better_challenger(), intervals=200)

    assert run.final["phase"] == decision.PROMOTED
    assert run.final["decision"]["winner"] == "challenger"
    assert "P(best)" in run.final["decision"]["reason"]
    promote = [a for a in run.actions[-1] if a.kind == "promote"]
    assert [a.variant for a in promote] == ["challenger"]

    # Weight rises step by step: from the even split, trending up, to the ceiling.
    w = run.weights("challenger")[:-1]  # the last status is the promoted one (challenger at 0)
    assert w[0] == 50
    assert np.mean(w[1:6]) < np.mean(w[-5:])
    assert w[-1] == 90
    assert sps.spearmanr(np.arange(len(w)), w).statistic > 0.3
    assert all(5 <= x <= 90 for x in w)
    assert all(sum(_weights_of(s).values()) == 100 for s in run.statuses)

    # Promoted at the first update where both conditions hold, and not before.
    def ready(s: Mapping[str, Any]) -> bool:
        ch, st = _variant(s, "challenger"), _variant(s, "stable")
        return bool(ch["probabilityToBeBest"] >= 0.95 and min(ch["rewards"], st["rewards"]) >= 1000)

    assert ready(run.final)
    assert not any(ready(s) for s in run.statuses[:-1])

    # P(best) agrees with the closed form for two Beta posteriors.
    ch, st = _variant(run.final, "challenger"), _variant(run.final, "stable")
    exact = p_b_beats_a(
        (st["posterior"]["alpha"], st["posterior"]["beta"]),
        (ch["posterior"]["alpha"], ch["posterior"]["beta"]),
    )
    assert ch["probabilityToBeBest"] == pytest.approx(exact, abs=0.01)
    # No sample-ratio alarm on honest traffic.
    assert all(not s["srm"].get("mismatch") for s in run.statuses)


def test_a_worse_challenger_is_never_promoted_and_falls_to_the_floor() -> None:
    traffic = simulate.Traffic(
        reward_rates={"stable": 0.10, "challenger": 0.07}, requests_per_interval=100, seed=11
    )
    run = run_experiment(make_spec(policy={"maxWeight": 95}), traffic, intervals=400)

    assert not any(a.kind == "promote" for acts in run.actions for a in acts)
    w = run.weights("challenger")
    assert 5 in w
    first_floor = w.index(5)
    # Once at the floor it stays within a few points of it.
    assert max(w[first_floor:-1]) <= 15, w
    assert run.final["phase"] == decision.CONCLUDED
    assert run.final["decision"]["winner"] == "stable"
    assert _weights_of(run.final) == {"stable": 100, "challenger": 0}


def test_a_challenger_breaching_the_error_guardrail_is_rolled_back_within_one_interval() -> None:
    traffic = simulate.Traffic(
        reward_rates={"stable": 0.10, "challenger": 0.15},
        requests_per_interval=1000,
        seed=3,
        error_rates={"stable": 0.001, "challenger": 0.30},
    )
    run = run_experiment(make_spec(), traffic, intervals=10)

    assert len(run.statuses) == 2  # the initial update, then one interval of traffic
    assert run.final["phase"] == decision.ROLLED_BACK
    assert _weights_of(run.final) == {"stable": 100, "challenger": 0}
    kinds = [a.kind for a in run.actions[-1]]
    assert "roll-back" in kinds
    cond = next(c for c in run.final["conditions"] if c["type"] == "GuardrailBreached")
    assert cond["status"] == "True"
    assert cond["reason"] == "ErrorRate"


def test_a_challenger_that_turns_bad_late_is_rolled_back_at_the_next_update() -> None:
    traffic = simulate.Traffic(
        reward_rates={"stable": 0.10, "challenger": 0.10},
        requests_per_interval=1000,
        seed=5,
        error_rates={"stable": 0.005, "challenger": 0.005},
    )

    def go_bad(t: simulate.Traffic) -> None:
        t.error_rates["challenger"] = 0.25

    run = run_experiment(make_spec(), traffic, intervals=30, inject={12: go_bad})
    assert run.final["phase"] == decision.ROLLED_BACK
    assert len(run.statuses) == 13  # the update right after the interval that went bad


def test_a_challenger_within_its_error_budget_is_never_rolled_back() -> None:
    traffic = simulate.Traffic(
        reward_rates={"stable": 0.10, "challenger": 0.10},
        requests_per_interval=1000,
        seed=8,
        error_rates={"stable": 0.005, "challenger": 0.008},
    )
    run = run_experiment(make_spec(stopping={"minSamplesPerVariant": 10**9}), traffic, intervals=60)
    assert all(s["phase"] == decision.RUNNING for s in run.statuses[1:])
    assert not any(_variant(s, "challenger")["rolledBack"] for s in run.statuses)


def test_a_challenger_breaching_the_latency_guardrail_is_rolled_back() -> None:
    traffic = simulate.Traffic(
        reward_rates={"stable": 0.10, "challenger": 0.15},
        requests_per_interval=1000,
        seed=4,
        latency_p99_ms={"stable": 100.0, "challenger": 400.0},
    )
    run = run_experiment(make_spec(), traffic, intervals=5)
    assert run.final["phase"] == decision.ROLLED_BACK
    cond = next(c for c in run.final["conditions"] if c["type"] == "GuardrailBreached")
    assert cond["reason"] == "LatencyP99"


def test_under_reported_requests_are_detected_as_sample_ratio_mismatch_and_pause() -> None:
    traffic = better_challenger(seed=21)
    traffic.per_interval = 1000  # enough requests per interval for the chi-square test

    def under_report(t: simulate.Traffic) -> None:
        t.under_report["challenger"] = 0.5

    raw = make_spec(stopping={"minSamplesPerVariant": 1000, "maxDuration": "1h"})
    run = run_experiment(raw, traffic, intervals=200, inject={3: under_report})

    assert not any(s["srm"].get("mismatch") for s in run.statuses[:3])
    # Detected within a few updates (not in an interval whose split a change of weights explains).
    k = next(i for i, s in enumerate(run.statuses) if s["srm"].get("mismatch"))
    assert 3 <= k <= 6
    before, at = run.statuses[k - 1], run.statuses[k]
    assert at["srm"]["paused"]
    # Against the split in force alone, scipy's chi-square is at least as significant: the
    # composite null (mixtures of the splits before and now) can only make the test milder.
    req = {
        n: _variant(at, n)["requests"] - _variant(before, n)["requests"]
        for n in ("stable", "challenger")
    }
    w = _weights_of(before)
    expected = [sum(req.values()) * w[n] / 100 for n in ("stable", "challenger")]
    plain = sps.chisquare([req["stable"], req["challenger"]], expected).pvalue
    assert plain <= at["srm"]["pValue"] < 0.001
    assert [a.kind for a in run.actions[k]] == ["pause"]
    cond = next(c for c in at["conditions"] if c["type"] == "SampleRatioMismatch")
    assert cond["status"] == "True"

    # Paused: the split is frozen and nothing is promoted, however strong the evidence gets.
    frozen = _weights_of(at)
    assert all(_weights_of(s) == frozen for s in run.statuses[k:-1])
    assert not any(a.kind == "promote" for acts in run.actions for a in acts)
    assert run.final["phase"] == decision.CONCLUDED  # by maxDuration, with a report
    assert "paused" in run.final["decision"]["reason"]
    assert {v["name"] for v in run.final["report"]["variants"]} == {"stable", "challenger"}


def test_an_operator_restart_between_updates_changes_no_decision_and_no_final_state() -> None:
    straight = run_experiment(make_spec(), better_challenger(seed=9), intervals=200)
    restarted = run_experiment(
        make_spec(), better_challenger(seed=9), intervals=200, round_trip=True
    )
    assert [as_stored(s) for s in restarted.statuses] == [as_stored(s) for s in straight.statuses]
    assert restarted.actions == straight.actions
    assert straight.final["phase"] == decision.PROMOTED


def test_an_update_lost_in_a_crash_and_redone_gives_the_same_status_and_actions() -> None:
    spec = spec_mod.parse_spec(make_spec())
    traffic = better_challenger(seed=2)
    run = run_experiment(make_spec(), traffic, intervals=8)
    status, weights = run.statuses[-1], _weights_of(run.statuses[-1])
    traffic.step(weights)
    now = T0 + 9 * INTERVAL
    counts = traffic.counts()
    first = decision.decide(
        spec, status, counts=counts, shares_in_force=weights, now=now, seed_key="default/exp"
    )
    # The operator died before writing `first`; its successor reads the same status and counters.
    again = decision.decide(
        spec,
        as_stored(status),
        counts=counts,
        shares_in_force=weights,
        now=now,
        seed_key="default/exp",
    )
    assert as_stored(again.status) == as_stored(first.status)
    assert again.actions == first.actions
    # Or it died after writing status but before the ConfigMap: re-running on the new status with
    # the same counters adds nothing, and the routes written from it carry the same weights.
    replay = decision.decide(
        spec, first.status, counts=counts, shares_in_force=weights, now=now, seed_key="default/exp"
    )
    assert replay.status == first.status
    assert replay.weights == first.weights
    assert replay.actions == first.actions


def test_a_router_restart_resets_its_counters_without_losing_or_doubling_counts() -> None:
    traffic = simulate.Traffic(
        reward_rates={"stable": 0.10, "challenger": 0.10},
        requests_per_interval=1000,
        seed=6,
        pods=3,
    )
    run = run_experiment(
        make_spec(stopping={"minSamplesPerVariant": 10**9}),
        traffic,
        intervals=12,
        inject={4: lambda t: t.restart_pod(1), 9: lambda t: t.restart_pod(2)},
    )
    for name in ("stable", "challenger"):
        assert _variant(run.final, name)["requests"] == traffic.served[name]


def test_a_terminal_status_is_returned_unchanged_with_the_actions_that_converge_to_it() -> None:
    spec = spec_mod.parse_spec(make_spec())
    run = run_experiment(make_spec(), better_challenger(seed=7), intervals=200)
    later = decision.decide(
        spec,
        run.final,
        counts={},
        shares_in_force={"stable": 100},
        now=T0 + timedelta(days=3),
        seed_key="default/exp",
    )
    assert later.status == run.final
    assert [a.kind for a in later.actions] == ["promote", "remove-challengers"]
    assert later.actions[0].variant == "challenger"


def test_a_fixed_policy_keeps_the_weights_of_the_spec() -> None:
    raw = make_spec(
        policy={"type": "fixed", "stableWeight": 70},
        variants=[
            {
                "name": "challenger",
                "model": {"name": "iris-classifier", "version": "4"},
                "weight": 30,
            }
        ],
        stopping={"minSamplesPerVariant": 10**9},
    )
    run = run_experiment(raw, better_challenger(seed=1), intervals=10)
    assert all(_weights_of(s) == {"stable": 70, "challenger": 30} for s in run.statuses)


def test_epsilon_greedy_gives_the_leader_all_but_epsilon_within_the_bounds() -> None:
    raw = make_spec(
        policy={"type": "epsilon-greedy", "epsilon": 0.2}, stopping={"minSamplesPerVariant": 10**9}
    )
    run = run_experiment(raw, better_challenger(seed=1), intervals=30)
    # Leader share 0.8 + 0.2 / 2 = 90 %, the other 10 %.
    assert _weights_of(run.final) == {"stable": 10, "challenger": 90}


def test_continuous_rewards_use_the_normal_posterior_of_the_mean() -> None:
    spec = spec_mod.parse_spec(make_spec(reward={"type": "continuous"}))
    status = decision.initial_status(spec, stable_model=STABLE_MODEL, now=T0)
    from modelpilot.operator.experiment import counts as counts_mod

    counts = {
        "r": {
            "stable": counts_mod.VariantCounts(requests=400, rewards=399, reward_sum=399 * 0.5),
            "challenger": counts_mod.VariantCounts(requests=400, rewards=399, reward_sum=399 * 0.6),
        }
    }
    out = decision.decide(spec, status, counts=counts, shares_in_force=None, now=T0, seed_key="k")
    st, ch = _variant(out.status, "stable"), _variant(out.status, "challenger")
    assert st["posterior"] == pytest.approx({"mean": 399 * 0.5 / 400, "variance": 1 / 400})
    # Oracle: P(N(m_c, v) > N(m_s, v)) = Phi((m_c - m_s) / sqrt(2 v)).
    oracle = sps.norm.cdf((ch["posterior"]["mean"] - st["posterior"]["mean"]) / math.sqrt(2 / 400))
    assert ch["probabilityToBeBest"] == pytest.approx(oracle, abs=0.01)


def test_the_error_guardrail_p_value_is_scipys_one_sided_binomial_test() -> None:
    from modelpilot.operator.experiment import guardrails

    for errs, n, limit in (
        (2, 50, 0.02),
        (1, 1, 0.02),
        (30, 100, 0.02),
        (0, 10, 0.05),
        (7, 200, 0.01),
    ):
        p = guardrails.error_rate_p_value(errors=errs, requests=n, limit=limit)
        oracle = sps.binomtest(errs, n, limit, alternative="greater").pvalue
        assert p == pytest.approx(oracle, rel=1e-9)


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"deploymentRef": ""}, "spec.deploymentRef"),
        ({"variants": []}, "spec.variants"),
        (
            {"variants": [{"name": "stable", "model": {"name": "m", "version": "1"}}]},
            "spec.variants[0].name",
        ),
        (
            {"variants": [{"name": "c", "model": {"name": "m", "version": "latest"}}]},
            "spec.variants[0].model.version",
        ),
        ({"policy": {"type": "ucb"}}, "spec.policy.type"),
        ({"policy": {"minWeight": 60, "maxWeight": 50}}, "spec.policy.minWeight"),
        ({"policy": {"type": "fixed", "stableWeight": 50}}, "spec.variants[0].weight"),
        (
            {
                "policy": {"type": "fixed", "stableWeight": 50},
                "variants": [{"name": "c", "model": {"name": "m", "version": "1"}, "weight": 40}],
            },
            "spec.policy.stableWeight",
        ),
        ({"policy": {"updateInterval": "soon"}}, "spec.policy.updateInterval"),
        ({"stopping": {"probabilityToBeBest": 1.5}}, "spec.stopping.probabilityToBeBest"),
        ({"guardrails": {"maxErrorRate": -0.1}}, "spec.guardrails.maxErrorRate"),
        ({"onSuccess": "celebrate"}, "spec.onSuccess"),
    ],
)
def test_a_bad_spec_is_refused_with_a_message_naming_the_field(
    patch: dict[str, Any], field: str
) -> None:
    from modelpilot import errors

    with pytest.raises(errors.InputError) as caught:
        spec_mod.parse_spec(make_spec(**patch))
    assert str(caught.value).startswith(f"{field}:")
    assert "\n" not in str(caught.value)


def test_durations_are_read_as_go_durations() -> None:
    assert spec_mod.parse_duration("1h30m", field="f") == 5400
    assert spec_mod.parse_duration("500ms", field="f") == 0.5
    assert spec_mod.parse_duration("24h", field="f") == 86400


def test_the_update_interval_falls_back_to_the_crd_default_when_absent_or_invalid() -> None:
    assert spec_mod.update_interval({"policy": {"updateInterval": "2s"}}) == 2.0
    assert spec_mod.update_interval({}) == 30.0
    assert spec_mod.update_interval({"policy": {"updateInterval": "soon"}}) == 30.0
    assert spec_mod.update_interval({"policy": "thompson"}) == 30.0


def test_a_router_following_the_thompson_weights_raises_no_false_sample_ratio_alarm() -> None:
    # The router draws every request from the weights in force (P(best), bounded), which is what
    # `inforce.expected_shares` reads back from the routes document for the SRM test.
    traffic = better_challenger(seed=13)
    traffic.per_interval = 1000
    run = run_experiment(make_spec(), traffic, intervals=60)
    assert any(s["srm"].get("pValue") is not None for s in run.statuses)
    assert all(not s["srm"].get("mismatch") for s in run.statuses)
    written = routes.build_routes_configmap(
        {
            "metadata": {"name": "iris", "namespace": "ml", "uid": "u"},
            "apiVersion": "v1",
            "kind": "X",
        },
        variants=routes.route_variants(
            stable_version="1",
            experiment={"status": {**run.statuses[-1], "phase": "Running"}},
        )[0],
    )
    in_force = routes_contract.loads(written["data"][routes.ROUTES_KEY])
    assert inforce.expected_shares(in_force) == {
        n: w / 100 for n, w in _weights_of(run.statuses[-1]).items()
    }


def test_the_rules_run_in_the_documented_order() -> None:
    assert [rule.__name__ for rule in decision.RULES] == [
        "accumulate",
        "check_guardrails",
        "probability_to_be_best",
        "sample_ratio_mismatch",
        "stopping",
        "weights",
        "completed",
    ]


def test_every_action_is_one_the_handler_dispatches_and_weights_travel_in_the_status() -> None:
    # Before: `apply-weights` and `conclude` were emitted on every update and never dispatched
    # (the routes follow the status); now every action kind has a handler branch.
    dispatched = {"promote", "roll-back", "pause", "remove-challengers"}
    for traffic in (better_challenger(seed=3), better_challenger(seed=4)):
        run = run_experiment(make_spec(), traffic, intervals=200)
        kinds = {a.kind for acts in run.actions for a in acts}
        assert kinds <= dispatched
        assert "remove-challengers" in kinds
    final = decision.Outcome(run.final, ())
    assert final.weights == {"stable": 100, "challenger": 0}
    assert final.phase == decision.PROMOTED

"""Continuous-reward experiments, driven by seeded simulations of router traffic.

The rewards are Normal on scales far from 1: revenue in dollars, N(100, 20^2) against
N(103, 20^2), and a small score, N(0.010, 0.002^2) against N(0.012, 0.002^2); a profit that is
mostly a loss, N(-5, 3^2) against N(-4, 3^2). The oracle beside each decision is computed here from
the simulated routers' own sums (count, sum, sum of squares): the closed-form P(best) of two Normal
posteriors with the sample variance, Phi((m1 - m2) / sqrt(v1 + v2)).

The previous version's posterior (unit observation variance, whatever the scale) is what the
operator still uses for routers that report no sum of squares, so replaying the same seeded traffic
through such routers (`squares=False`) shows what the previous version would have decided.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from scipy import stats as sps

from modelpilot.operator.experiment import decision, simulate
from modelpilot.operator.experiment import spec as spec_mod
from tests.operator.experiment import test_experiment_decision as sim

REPO = Path(__file__).resolve().parents[3]
P_BEST = 0.95


def traffic(
    means: tuple[float, float], sd: float, *, seed: int, squares: bool = True, pods: int = 2
) -> simulate.Traffic:
    return simulate.Traffic(
        reward_rates={"stable": means[0], "challenger": means[1]},
        reward_sd={"stable": sd, "challenger": sd},
        requests_per_interval=100,
        seed=seed,
        squares=squares,
        pods=pods,
    )


def continuous_spec(min_samples: int = 100, **stopping: Any) -> dict[str, Any]:
    return sim.make_spec(
        reward={"type": "continuous"},
        stopping={"minSamplesPerVariant": min_samples, "probabilityToBeBest": P_BEST, **stopping},
    )


def raw_sums(t: simulate.Traffic) -> dict[str, tuple[int, float, float]]:
    """(count, sum, sum of squares) of every reward the simulated routers have joined so far,
    whether or not they report the squares."""
    return {
        n: (
            sum(p.rewards.get(n, 0) for p in t.pods),
            math.fsum(p.reward_sum.get(n, 0) for p in t.pods),
            math.fsum(p.reward_sum_squares.get(n, 0) for p in t.pods),
        )
        for n in t.names
    }


def oracle_p_best(t: simulate.Traffic, winner: str) -> float:
    """Closed-form P(winner has the higher mean): Normal posteriors N(mean, s^2 / n)."""
    post = {}
    for n, (k, s, q) in raw_sums(t).items():
        post[n] = (s / k, (q - s * s / k) / (k - 1) / k)
    (loser,) = set(post) - {winner}
    (mw, vw), (ml, vl) = post[winner], post[loser]
    return float(sps.norm.cdf((mw - ml) / math.sqrt(vw + vl)))


def unit_variance_p_best(status: Mapping[str, Any], winner: str) -> float:
    """Closed-form P(best) under the previous version's posterior N(S / (n + 1), 1 / (n + 1))."""
    post = {}
    for v in status["variants"]:
        n = v["rewards"]
        post[v["name"]] = (v["rewardSum"] / (n + 1), 1 / (n + 1))
    (loser,) = set(post) - {winner}
    (mw, vw), (ml, vl) = post[winner], post[loser]
    return float(sps.norm.cdf((mw - ml) / math.sqrt(vw + vl)))


SCALES = {
    "dollars": ((100.0, 20.0), 3.0),
    "fractions": ((0.010, 0.002), 0.002),
}


@pytest.mark.parametrize("better", [True, False], ids=["better", "worse"])
@pytest.mark.parametrize("scale", list(SCALES))
def test_on_any_reward_scale_a_better_challenger_is_promoted_and_a_worse_one_never(
    scale: str, better: bool
) -> None:
    (mean, sd), lift = SCALES[scale]
    challenger = mean + lift if better else mean - lift
    for seed in range(10):
        t = traffic((mean, challenger), sd, seed=seed)
        run = sim.run_experiment(continuous_spec(), t, intervals=400)
        final = run.final
        promoted = [a.variant for acts in run.actions for a in acts if a.kind == "promote"]
        if better:
            assert final["phase"] == decision.PROMOTED, (seed, final["decision"])
            assert promoted == ["challenger"]
        else:
            assert promoted == [], seed
            assert final["phase"] == decision.CONCLUDED
        winner = final["decision"]["winner"]
        assert winner == ("challenger" if better else spec_mod.STABLE)
        # Decided on evidence the data hold: the closed form agrees (Monte Carlo P(best) with
        # 20,000 draws decided, hence the small margin).
        assert oracle_p_best(t, winner) >= P_BEST - 0.01, seed
        # The posterior in status is the sample mean and s^2 / n of the joined rewards.
        for name, (k, s, q) in raw_sums(t).items():
            v = sim._variant(final, name)
            assert v["rewards"] == k
            assert v["posterior"]["mean"] == pytest.approx(s / k, rel=1e-9)
            assert v["posterior"]["variance"] == pytest.approx(
                (q - s * s / k) / (k - 1) / k, rel=1e-6
            )


def test_the_unit_variance_posterior_promotes_dollars_on_evidence_it_does_not_have() -> None:
    # Same seeds, same traffic model: routers with sums of squares (the estimated variance) and
    # routers without (the previous version's unit variance). 30 seeds, the better challenger.
    new_wrong, old_wrong, old_unfounded, claimed, honest = 0, 0, 0, [], []
    for seed in range(30):
        t = traffic((100.0, 103.0), 20.0, seed=seed)
        final = sim.run_experiment(continuous_spec(), t, intervals=400).final
        assert final["phase"] in decision.TERMINAL
        new_wrong += final["decision"]["winner"] != "challenger"

        old = traffic((100.0, 103.0), 20.0, seed=seed, squares=False)
        run = sim.run_experiment(continuous_spec(), old, intervals=400)
        winner = run.final["decision"]["winner"]
        old_wrong += winner != "challenger"
        # What the previous posterior claimed at its decision, against the closed form on the same
        # rewards with their sample variance.
        claimed.append(unit_variance_p_best(run.final, winner))
        honest.append(oracle_p_best(old, winner))
        old_unfounded += honest[-1] < P_BEST

    assert new_wrong == 0
    assert old_wrong >= 1
    assert old_wrong > new_wrong
    # A unit variance against a real one of 400: the previous posterior is 20 times too narrow,
    # so it claims near-certainty as soon as minSamplesPerVariant allows, and in many runs the
    # rewards it decided on give its winner far less than the 0.95 it was asked for.
    assert np.median(claimed) > 0.999
    assert old_unfounded >= 5, sorted(honest)


def test_the_unit_variance_posterior_never_decides_on_a_small_score_the_new_one_does() -> None:
    t = traffic((0.010, 0.012), 0.002, seed=1)
    new = sim.run_experiment(continuous_spec(), t, intervals=400)
    assert new.final["phase"] == decision.PROMOTED
    assert new.final["decision"]["winner"] == "challenger"
    decided_after = len(new.statuses) - 1

    old_t = traffic((0.010, 0.012), 0.002, seed=1, squares=False)
    old = sim.run_experiment(continuous_spec(), old_t, intervals=400)
    assert old.final["phase"] == decision.RUNNING  # 400 intervals, 40,000 requests: no decision
    assert decided_after < 400 // 10
    ch = sim._variant(old.final, "challenger")
    assert ch["probabilityToBeBest"] < 0.8
    assert unit_variance_p_best(old.final, "challenger") < 0.8
    # Under a unit variance the standard error of a 0.002 difference with n rewards per arm is
    # sqrt(2 / n): P(best) reaches 0.95 only at n = 2 (z_0.95 / 0.002)^2, about 1.35 million
    # rewards per arm, against the fewer than a thousand the estimated variance needed.
    n_needed = 2 * (sps.norm.ppf(P_BEST) / 0.002) ** 2
    rewards_used = max(v["rewards"] for v in new.final["variants"])
    assert n_needed > 1.3e6
    assert n_needed > 1000 * rewards_used


def test_negative_rewards_are_counted_not_taken_for_router_restarts() -> None:
    t = traffic((-5.0, -4.0), 3.0, seed=4, pods=3)
    lost: dict[str, list[float]] = {n: [0, 0.0] for n in t.names}

    def restart(index: int) -> Any:
        def go(tr: simulate.Traffic) -> None:
            for n in tr.names:  # what the pod had counted before its restart, for the totals
                lost[n][0] += tr.pods[index].rewards.get(n, 0)
                lost[n][1] += tr.pods[index].reward_sum.get(n, 0)
            tr.restart_pod(index)

        return go

    run = sim.run_experiment(
        continuous_spec(min_samples=300),
        t,
        intervals=400,
        inject={6: restart(1), 11: restart(2)},
    )
    assert sum(t.restarts) == 2
    final = run.final
    assert final["phase"] == decision.PROMOTED
    assert final["decision"]["winner"] == "challenger"
    sums = raw_sums(t)
    for name in t.names:
        v = sim._variant(final, name)
        # Every reward counted once: the cumulative sums fell at almost every read, and only the
        # two restarts were resets.
        assert v["rewards"] == sums[name][0] + lost[name][0]
        assert v["rewardSum"] == pytest.approx(sums[name][1] + lost[name][1], abs=1e-6)
        assert v["rewardSum"] < -1000
        assert v["posteriorMean"] == pytest.approx(-5.0 if name == "stable" else -4.0, abs=0.5)
    sums_per_update = [sim._variant(s, "stable")["rewardSum"] for s in run.statuses[1:]]
    assert all(b < a for a, b in itertools.pairwise(sums_per_update))


def _as_previous_version_wrote_it(status: Mapping[str, Any]) -> dict[str, Any]:
    """The status without the fields this version added (what the previous operator stored)."""
    out = sim.as_stored(status)
    for v in out["variants"]:
        for key in ("rewardSumSquares", "unsquaredRewards", "unsquaredRewardSum"):
            v.pop(key, None)
    for per in out.get("counters", {}).values():
        for c in per.values():
            c.pop("rewardSumSquares", None)
    return dict(out)


def test_a_status_written_before_sums_of_squares_loads_and_continues_on_the_new_rewards() -> None:
    spec = spec_mod.parse_spec(continuous_spec(min_samples=10**9))
    t = traffic((100.0, 103.0), 20.0, seed=8, squares=False)
    status = decision.initial_status(spec, stable_model=sim.STABLE_MODEL, now=sim.T0)
    status = _as_previous_version_wrote_it(status)
    in_force: dict[str, float] | None = None
    now = sim.T0

    def update() -> dict[str, Any]:
        nonlocal now, in_force
        now += sim.INTERVAL
        out = decision.decide(
            spec, status, counts=t.counts(), shares_in_force=in_force, now=now, seed_key="d/e"
        )
        in_force = sim._in_force(out.status)
        return out.status

    # The first update, then six intervals under the previous operator and routers without sums
    # of squares.
    status = _as_previous_version_wrote_it(update())
    for _ in range(6):
        assert in_force is not None
        t.step(in_force)
        status = _as_previous_version_wrote_it(update())
        for v in status["variants"]:  # the previous posterior, unit variance
            n = v["rewards"]
            assert v["posterior"] == pytest.approx(
                {"mean": v["rewardSum"] / (n + 1), "variance": 1 / (n + 1)}
            )
    before = {v["name"]: (v["rewards"], v["rewardSum"]) for v in status["variants"]}
    assert all(k > 50 for k, _ in before.values())

    # The upgrade: this operator reads that status; the routers restart and report squares.
    for i in range(len(t.pods)):
        t.restart_pod(i)
    t.squares = True
    for _ in range(20):
        assert in_force is not None
        t.step(in_force)
        status = update()

    sums = raw_sums(t)  # the restarted routers hold exactly the rewards since the upgrade
    for v in status["variants"]:
        k0, s0 = before[v["name"]]
        kq, sq, qq = sums[v["name"]]
        assert (v["unsquaredRewards"], v["unsquaredRewardSum"]) == (k0, pytest.approx(s0))
        assert v["rewards"] == k0 + kq
        assert v["rewardSumSquares"] == pytest.approx(qq, rel=1e-12)
        n, s = v["rewards"], v["rewardSum"]
        sample_variance = (qq - sq * sq / kq) / (kq - 1)
        assert sample_variance == pytest.approx(400, rel=0.2)
        assert v["posterior"]["mean"] == pytest.approx(s / n, rel=1e-9)
        assert v["posterior"]["variance"] == pytest.approx(sample_variance / n, rel=1e-6)
        # Had the missing squares been read as 0 and the totals used, the "variance" would be
        # negative: nothing but the rewards with squares can give it.
        assert (v["rewardSumSquares"] - s * s / n) / (n - 1) < 0


def _pruned(value: Any, schema: Mapping[str, Any], path: str) -> list[str]:
    """Paths of `value` that a structural schema would prune (not declared, nothing preserved)."""
    if isinstance(value, dict):
        props = schema.get("properties")
        extra = schema.get("additionalProperties")
        if schema.get("x-kubernetes-preserve-unknown-fields") or (props is None and not extra):
            return []
        out = []
        for key, item in value.items():
            sub = (props or {}).get(key) or (extra if isinstance(extra, dict) else None)
            if sub is None:
                out.append(f"{path}.{key}")
            else:
                out.extend(_pruned(item, sub, f"{path}.{key}"))
        return out
    if isinstance(value, list):
        return [e for i, x in enumerate(value) for e in _pruned(x, schema["items"], f"{path}[{i}]")]
    return []


def test_every_status_field_of_a_continuous_experiment_is_in_the_crd_so_none_is_pruned() -> None:
    crd = yaml.safe_load((REPO / "manifests/crds/experiments.modelpilot.io.yaml").read_text())
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["status"]
    t = traffic((100.0, 103.0), 20.0, seed=2)
    run = sim.run_experiment(continuous_spec(), t, intervals=400)
    for status in run.statuses:
        assert _pruned(sim.as_stored(status), schema, "status") == []
    assert "rewardSumSquares" in run.statuses[1]["counters"]["router-0"]["stable"]
    final = np.array([sim._variant(run.final, n)["rewardSumSquares"] for n in t.names])
    assert np.all(final > 0)

"""The Experiment's decision: one pure function from what is known to the new status and actions.

    decide(spec, previous status, new cumulative counts per source, weights in force, now)
        -> Outcome(status, actions)

Key design decision: **all state is in the inputs**. The previous status carries the running totals,
the last raw counters seen per source, the phase and the conditions; the weights in force come from
the routes ConfigMap. The random draws behind probability-to-be-best are seeded from a hash of the
posterior itself, so the same inputs always give the same outputs, byte for byte. That is what makes
an operator restart harmless: re-running an update after a crash recomputes the same status and the
same actions, and the actions (apply weights, patch the ModelDeployment, delete challengers) are
idempotent. A terminal status (Promoted, RolledBack, Concluded) is returned unchanged with the
actions that converge the world to it, so a crash between writing status and acting is repaired on
the next loop.

Order of rules in one update (documented because the order is the policy):
  1. guardrails: a challenger that breaches gets weight 0 at once and is marked rolled back; when no
     challenger is left, the phase is RolledBack;
  2. sample-ratio mismatch: a chi-square test of the interval's requests against the split that
     was in force (`inforce.expected_shares` of the routes ConfigMap); p < 0.001 pauses
     adaptation (weights frozen, no promotion) until the spec changes, and sets the
     SampleRatioMismatch condition;
  3. stopping: maxDuration reached -> Concluded with a report; otherwise, when every active variant
     has at least minSamplesPerVariant rewards and one has probability to be best >= the threshold,
     a challenger is promoted (onSuccess promote) or reported (onSuccess report -> Concluded), and
     the stable variant winning concludes the experiment with no change;
  4. weights: Thompson (shares = probability to be best), epsilon-greedy or fixed, then the
     floor/ceiling of `policy.minWeight`/`maxWeight`, integers summing to 100.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np

from modelpilot.api import conditions as shared_conditions
from modelpilot.operator.experiment import conditions, guardrails, posterior
from modelpilot.operator.experiment import counts as counts_mod
from modelpilot.operator.experiment import spec as spec_mod
from modelpilot.operator.experiment import srm as srm_mod
from modelpilot.stats import bandits

PENDING, RUNNING = "Pending", "Running"
PROMOTED, ROLLED_BACK, CONCLUDED, FAILED = "Promoted", "RolledBack", "Concluded", "Failed"
TERMINAL = frozenset({PROMOTED, ROLLED_BACK, CONCLUDED, FAILED})

SRM_MIN_REQUESTS = 200
"""Below this many requests in an interval the chi-square approximation is not worth testing."""

COND_SRM = "SampleRatioMismatch"
COND_GUARDRAIL = "GuardrailBreached"
COND_COMPLETED = "Completed"


@dataclass(frozen=True)
class Action:
    """Something the handler must make true in the world. Every action is idempotent.

    kind: `apply-weights` (write `weights` to the routes ConfigMap), `promote` (set the
    ModelDeployment's model to `variant`'s, then remove the challengers), `roll-back` (`variant`
    gets no traffic), `pause` (SRM alarm), `conclude` (remove the challengers, 100 % stable).
    """

    kind: str
    reason: str
    message: str
    variant: str | None = None
    weights: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Outcome:
    status: dict[str, Any]
    actions: tuple[Action, ...]


timestamp = shared_conditions.timestamp
"""RFC 3339 in UTC with a `Z`, second precision, as Kubernetes writes times."""
parse_timestamp = shared_conditions.parse_timestamp


def initial_status(
    spec: spec_mod.ExperimentSpec, *, stable_model: Mapping[str, str], now: datetime
) -> dict[str, Any]:
    """The status of a new Experiment: Pending, equal priors, no counts, weights not yet set."""
    models = {spec_mod.STABLE: dict(stable_model)}
    for v in spec.variants:
        models[v.name] = {"name": v.model_name, "version": v.model_version}
    return {
        "phase": PENDING,
        "startTime": timestamp(now),
        "variants": [
            {
                "name": name,
                "model": models[name],
                "weight": 0,
                "requests": 0,
                "errors": 0,
                "rewards": 0,
                "rewardSum": 0.0,
                "rewardSumSquares": 0.0,
                "unsquaredRewards": 0,
                "unsquaredRewardSum": 0.0,
                "posterior": posterior.prior(spec.reward_type),
                "posteriorMean": posterior.mean(posterior.prior(spec.reward_type)),
                "probabilityToBeBest": 0.0,
                "errorRate": 0.0,
                "latencyP99Ms": None,
                "rolledBack": False,
            }
            for name in spec.variant_names
        ],
        "counters": {},
        "srm": {"pValue": None, "mismatch": False, "paused": False},
        "decision": {"winner": None, "reason": "", "time": None},
        "conditions": [],
    }


def _seed(seed_key: str, posteriors: Sequence[Mapping[str, float]]) -> int:
    # Formatted floats: the API server may hand 1.0 back as 1, which must not change the seed.
    canon = [{k: f"{float(v):.12g}" for k, v in sorted(p.items())} for p in posteriors]
    blob = json.dumps([seed_key, canon]).encode()
    return int.from_bytes(hashlib.sha256(blob).digest()[:8], "big")


def _normalised(variant: Mapping[str, Any], reward_type: str) -> dict[str, Any]:
    """A status variant with every field present: the API server drops nulls (merge patch).

    A variant written by an operator of a version before sums of squares has no
    `rewardSumSquares`: its rewards so far count as rewards without squares (see `posterior`).
    """
    out = dict(variant)
    if "rewardSumSquares" not in out:
        out["rewardSumSquares"] = 0.0
        out["unsquaredRewards"] = out.get("rewards", 0)
        out["unsquaredRewardSum"] = out.get("rewardSum", 0.0)
    for key, default in (
        ("weight", 0),
        ("requests", 0),
        ("errors", 0),
        ("rewards", 0),
        ("rewardSum", 0.0),
        ("unsquaredRewards", 0),
        ("unsquaredRewardSum", 0.0),
        ("probabilityToBeBest", 0.0),
        ("errorRate", 0.0),
        ("latencyP99Ms", None),
        ("rolledBack", False),
        ("model", {}),
    ):
        out.setdefault(key, default)
    out.setdefault("posterior", posterior.prior(reward_type))
    out.setdefault("posteriorMean", posterior.mean(out["posterior"]))
    return out


def _shares(
    spec: spec_mod.ExperimentSpec,
    active: Sequence[str],
    p_best: Mapping[str, float],
    means: Mapping[str, float],
) -> list[float]:
    if spec.policy_type == "fixed":
        return [float(spec.fixed_weights.get(n, 0)) for n in active]
    if spec.policy_type == "epsilon-greedy":
        shares = bandits.epsilon_greedy_weights([means[n] for n in active], epsilon=spec.epsilon)
        return [float(x) for x in shares]
    return [p_best[n] for n in active]


def _weights(
    spec: spec_mod.ExperimentSpec, active: Sequence[str], shares: Sequence[float]
) -> dict[str, int]:
    """Integer weights over all variants: the active ones bounded, the others 0."""
    out = dict.fromkeys(spec.variant_names, 0)
    if len(active) == 1:
        out[active[0]] = 100
        return out
    total = sum(shares)
    norm = [s / total for s in shares] if total > 0 else [1 / len(active)] * len(active)
    # With variants rolled back the ceiling may no longer reach 100 in sum; relax it just enough.
    ceiling = max(spec.max_weight, math.ceil(100 / len(active)))
    floor = min(spec.min_weight, 100 // len(active))
    bounded = bandits.bounded_weights(norm, floor=floor, ceiling=ceiling)
    for n, w in zip(active, bounded, strict=True):
        out[n] = int(w)
    return out


def _terminal_actions(status: Mapping[str, Any]) -> tuple[Action, ...]:
    phase = status["phase"]
    decision = status.get("decision") or {}
    names = [v["name"] for v in status.get("variants") or []]
    final = {n: (100 if n == spec_mod.STABLE else 0) for n in names}
    reason = str(decision.get("reason", ""))
    if phase == PROMOTED:
        return (
            Action("promote", "Promoted", reason, variant=decision.get("winner")),
            Action("apply-weights", "Promoted", reason, weights=final),
        )
    if phase in (ROLLED_BACK, CONCLUDED):
        return (
            Action("conclude", phase, reason, variant=decision.get("winner")),
            Action("apply-weights", phase, reason, weights=final),
        )
    return ()


def _report(variants: Sequence[Mapping[str, Any]], *, reason: str, now: str) -> dict[str, Any]:
    return {
        "time": now,
        "reason": reason,
        "variants": [
            {
                "name": v["name"],
                "modelVersion": (v.get("model") or {}).get("version"),
                "requests": v["requests"],
                "rewards": v["rewards"],
                "posteriorMean": v["posteriorMean"],
                "probabilityToBeBest": v["probabilityToBeBest"],
                "errorRate": v["errorRate"],
                "latencyP99Ms": v["latencyP99Ms"],
                "rolledBack": v["rolledBack"],
            }
            for v in variants
        ],
    }


def decide(
    spec: spec_mod.ExperimentSpec,
    previous: Mapping[str, Any],
    *,
    counts: counts_mod.Observed,
    shares_in_force: Mapping[str, float] | None,
    now: datetime,
    seed_key: str,
    draws: int = 20_000,
) -> Outcome:
    """One update of the experiment. See the module docstring for the rules and their order.

    `previous` is the Experiment's status (as from `initial_status` or an earlier `decide`);
    `counts` the cumulative counters per source and variant as just read; `shares_in_force` the
    split the routers were following over the interval (see `inforce.expected_shares`; None: the
    weights in `previous`); `seed_key` names the experiment (namespace/name) so two experiments do
    not share random draws.
    """
    prev = json.loads(json.dumps(previous))  # a deep copy that also proves the status is JSON
    if prev.get("phase") in TERMINAL:
        return Outcome(prev, _terminal_actions(prev))

    now_s = timestamp(now)
    by_name = {v["name"]: _normalised(v, spec.reward_type) for v in prev.get("variants") or []}
    names = spec.variant_names
    # A variant added to the spec mid-experiment starts from the prior; one removed is dropped.
    fresh = initial_status(spec, stable_model={}, now=now)["variants"]
    for entry in fresh:
        if entry["name"] not in by_name:
            by_name[entry["name"]] = entry
    previous_weights = {n: int(by_name[n]["weight"]) for n in names}
    in_force = dict(shares_in_force) if shares_in_force is not None else dict(previous_weights)

    observed_before = counts_mod.observed_from_json(prev.get("counters"), field="status.counters")
    delta = counts_mod.increments(observed_before, counts, variants=names)
    observed = counts_mod.merge_observed(observed_before, counts)

    conds: Sequence[Mapping[str, Any]] = list(prev.get("conditions") or [])
    breaches: list[guardrails.Breach] = []
    for n in names:
        v = by_name[n]
        d = delta[n]
        v["requests"] += d.requests
        v["errors"] += d.errors
        v["rewards"] += d.rewards
        # Sums are not rounded: a continuous reward may be of order 1e-6, and its variance is a
        # small difference of such sums. (Binary sums are whole numbers, exact in a float.)
        v["rewardSum"] = v["rewardSum"] + d.reward_sum
        v["rewardSumSquares"] = v["rewardSumSquares"] + (d.reward_sum_squares or 0.0)
        v["unsquaredRewards"] += d.unsquared_rewards
        v["unsquaredRewardSum"] = v["unsquaredRewardSum"] + d.unsquared_reward_sum
        if d.latency_p99_ms is not None:
            v["latencyP99Ms"] = d.latency_p99_ms
        v["errorRate"] = v["errors"] / v["requests"] if v["requests"] else 0.0
        v["posterior"] = posterior.update(
            spec.reward_type,
            rewards=v["rewards"],
            reward_sum=v["rewardSum"],
            reward_sum_squares=v["rewardSumSquares"],
            unsquared_rewards=v["unsquaredRewards"],
            unsquared_reward_sum=v["unsquaredRewardSum"],
        )
        v["posteriorMean"] = posterior.mean(v["posterior"])
        if n != spec_mod.STABLE and v["rolledBack"]:
            continue
        breach = guardrails.check(
            n,
            interval=(d.errors, d.requests),
            total=(v["errors"], v["requests"]),
            latency_p99_ms=v["latencyP99Ms"],
            max_error_rate=spec.max_error_rate,
            max_latency_p99_ms=spec.max_latency_p99_ms,
        )
        if breach is not None:
            breaches.append(breach)
            if n != spec_mod.STABLE:
                v["rolledBack"] = True

    actions: list[Action] = []
    for b in breaches:
        if b.variant != spec_mod.STABLE:
            actions.append(Action("roll-back", b.reason, b.message, variant=b.variant))
    if breaches:
        conds = conditions.set_condition(
            conds,
            type_=COND_GUARDRAIL,
            status=True,
            reason=breaches[0].reason,
            message="; ".join(b.message for b in breaches),
            now=now_s,
        )
    elif conditions.get(conds, COND_GUARDRAIL) is None:
        conds = conditions.set_condition(
            conds,
            type_=COND_GUARDRAIL,
            status=False,
            reason="WithinLimits",
            message="every variant is within its guardrails",
            now=now_s,
        )

    active = [n for n in names if n == spec_mod.STABLE or not by_name[n]["rolledBack"]]

    # Probability to be best among the active variants; rolled-back ones are out of the running.
    posts = [by_name[n]["posterior"] for n in active]
    rng = np.random.default_rng(_seed(seed_key, posts))
    p_active = posterior.probability_to_be_best(spec.reward_type, posts, draws=draws, rng=rng)
    p_best = dict.fromkeys(names, 0.0)
    p_best.update(dict(zip(active, p_active, strict=True)))
    for n in names:
        by_name[n]["probabilityToBeBest"] = round(p_best[n], 6)

    # Sample-ratio mismatch over this interval, against the split that was in force.
    srm = dict(prev.get("srm") or {})
    # Candidates: the split in force at the previous update (routers may still have been on it
    # at the start of the interval) and the split in force now; see `srm`.
    candidates = [c for c in (srm.get("expected"), in_force) if c]
    p_srm = srm_mod.p_value(
        {n: delta[n].requests for n in names}, candidates, min_requests=SRM_MIN_REQUESTS
    )
    total_in_force = sum(max(0.0, float(w)) for w in in_force.values())
    if total_in_force > 0:
        srm["expected"] = {
            n: round(max(0.0, float(w)) / total_in_force, 6) for n, w in sorted(in_force.items())
        }
    if p_srm is not None:
        srm["pValue"] = p_srm
        srm["mismatch"] = p_srm < spec.srm_p_value
        if srm["mismatch"] and not srm.get("paused"):
            srm["paused"] = True
            msg = (
                f"requests {', '.join(f'{n}={delta[n].requests}' for n in names)} against weights "
                f"{', '.join(f'{n}={in_force.get(n, 0):.3g}' for n in names)}: chi-square "
                f"p = {p_srm:.2e} < {spec.srm_p_value:g}; adaptation paused"
            )
            actions.append(Action("pause", COND_SRM, msg))
            conds = conditions.set_condition(
                conds,
                type_=COND_SRM,
                status=True,
                reason="ChiSquareFailed",
                message=msg,
                now=now_s,
            )
    if conditions.get(conds, COND_SRM) is None:
        conds = conditions.set_condition(
            conds,
            type_=COND_SRM,
            status=False,
            reason="SplitAsExpected",
            message="requests follow the weights in force",
            now=now_s,
        )
    paused = bool(srm.get("paused"))

    phase = RUNNING
    decision = dict(prev.get("decision") or {"winner": None, "reason": "", "time": None})
    report: dict[str, Any] | None = None
    started = parse_timestamp(prev["startTime"])
    elapsed = (now - started).total_seconds()
    if len(active) == 1:
        phase = ROLLED_BACK
        decision = {
            "winner": spec_mod.STABLE,
            "reason": "every challenger breached a guardrail: "
            + "; ".join(b.message for b in breaches),
            "time": now_s,
        }
    elif spec.max_duration_s is not None and elapsed >= spec.max_duration_s:
        leader = max(active, key=lambda n: p_best[n])
        decided = p_best[leader] >= spec.probability_to_be_best
        phase = CONCLUDED
        decision = {
            "winner": leader if decided else None,
            "reason": (
                f"maxDuration {spec.max_duration_s:g}s reached; leader {leader} with "
                f"P(best) = {p_best[leader]:.3f}"
                + ("" if decided else f" < {spec.probability_to_be_best}: no winner")
                + (" (adaptation was paused by an SRM alarm)" if paused else "")
            ),
            "time": now_s,
        }
    elif not paused:
        enough = all(by_name[n]["rewards"] >= spec.min_samples_per_variant for n in active)
        leader = max(active, key=lambda n: p_best[n])
        if enough and p_best[leader] >= spec.probability_to_be_best:
            lv = by_name[leader]
            # A rate reads well with 4 decimals; a continuous reward may be 1e-4 or 1e6.
            mean_format = ".4f" if spec.reward_type == "binary" else ".6g"
            why = (
                f"{leader} (model version {lv['model'].get('version')}) has P(best) = "
                f"{p_best[leader]:.4f} >= {spec.probability_to_be_best} with "
                + ", ".join(f"{n}: {by_name[n]['rewards']} rewards" for n in active)
                + f" (>= {spec.min_samples_per_variant} each); posterior means "
                + ", ".join(f"{n}: {by_name[n]['posteriorMean']:{mean_format}}" for n in active)
            )
            if leader != spec_mod.STABLE and spec.on_success == "promote":
                phase = PROMOTED
            else:
                phase = CONCLUDED
            decision = {"winner": leader, "reason": why, "time": now_s}

    if phase in TERMINAL:
        report = _report([by_name[n] for n in names], reason=decision["reason"], now=now_s)
        weights = {n: (100 if n == spec_mod.STABLE else 0) for n in names}
    elif paused:
        # Frozen: the split in force stays; a rolled-back variant's share goes to stable.
        weights = {n: (previous_weights[n] if n in active else 0) for n in names}
        weights[spec_mod.STABLE] += 100 - sum(weights.values())
    else:
        means = {n: by_name[n]["posteriorMean"] for n in active}
        weights = _weights(spec, active, _shares(spec, active, p_best, means))
    for n in names:
        by_name[n]["weight"] = weights[n]

    completed = phase in TERMINAL
    conds = conditions.set_condition(
        conds,
        type_=COND_COMPLETED,
        status=completed,
        reason=phase if completed else ("Paused" if paused else "Running"),
        message=decision["reason"]
        if completed
        else ("adaptation paused by a sample-ratio mismatch" if paused else "collecting evidence"),
        now=now_s,
    )

    status: dict[str, Any] = {
        **prev,
        "phase": phase,
        "lastUpdateTime": now_s,
        "variants": [by_name[n] for n in names],
        "counters": counts_mod.observed_to_json(observed),
        "srm": srm,
        "decision": decision,
        "conditions": conds,
    }
    if report is not None:
        status["report"] = report
    if phase in TERMINAL:
        actions.extend(_terminal_actions(status))
    else:
        # Always asked for, not only on a change: the ConfigMap write may be the step a crash lost.
        changed = "new weights" if weights != previous_weights else "weights unchanged"
        actions.append(Action("apply-weights", "Updated", changed, weights=weights))
    return Outcome(status, tuple(actions))

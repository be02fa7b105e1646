"""The Experiment's decision: named rules over a typed state, from what is known to what to do.

    decide(spec, previous status, new cumulative counts per source, split in force, now)
        -> Outcome(status, actions)

Key design decision: **all state is in the inputs**. The previous status carries the running totals,
the last raw counters seen per source, the phase and the conditions; the split in force comes from
the routes ConfigMap. The random draws behind probability-to-be-best are seeded from a hash of the
posterior itself, so the same inputs always give the same outputs, byte for byte. That is what makes
an operator restart harmless: re-running an update after a crash recomputes the same status and the
same actions, and every action is idempotent. A terminal status (Promoted, RolledBack, Concluded,
Failed) is returned unchanged with the actions that converge the world to it, so a crash between
writing status and acting is repaired on the next loop.

What the handler does with an `Outcome`, exactly, in this order:
  1. write `outcome.status` (before any side effect);
  2. for each action: `promote` -> point the ModelDeployment at `variant`'s model (merge patch);
     `roll-back` and `pause` -> an Event with `message` (the weight change is in the status
     already);
  3. write the routes ConfigMap with `builders.routes.route_variants` of the new status: the
     weights reach the routers through the status (`status.variants[].weight`), so there is no
     separate "apply weights" action to forget (a terminal phase gives stable 100 % there);
  4. `remove-challengers` -> delete the challengers' Deployments and Services, after the routes
     stopped sending them traffic.

The rules, in `RULES` order (the order is the policy):
  1. `accumulate`: the counter increments since the last update into per-variant totals and
     posteriors;
  2. `guardrails`: a challenger that breaches gets weight 0 at once and is marked rolled back;
  3. `probability_to_be_best` among the variants not rolled back;
  4. `sample_ratio_mismatch`: a chi-square test of the interval's requests against the split that
     was in force (`inforce.expected_shares` of the routes ConfigMap); p < srmPValue pauses
     adaptation (weights frozen, no promotion) until the spec changes;
  5. `stopping`: no challenger left -> RolledBack; maxDuration reached -> Concluded with a report;
     otherwise, when every active variant has at least minSamplesPerVariant rewards and one has
     probability to be best >= the threshold, a challenger is promoted (onSuccess promote) or
     reported (onSuccess report -> Concluded), and the stable variant winning concludes;
  6. `weights`: Thompson (shares = probability to be best), epsilon-greedy or fixed, then the
     floor/ceiling of `policy.minWeight`/`maxWeight`, integers summing to 100; frozen when paused;
     stable 100 % once terminal;
  7. `completed`: the Completed condition, and the terminal actions.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

import numpy as np

from modelpilot.api import conditions as shared_conditions
from modelpilot.api import constants
from modelpilot.operator.experiment import conditions, guardrails, posterior
from modelpilot.operator.experiment import counts as counts_mod
from modelpilot.operator.experiment import spec as spec_mod
from modelpilot.operator.experiment import srm as srm_mod
from modelpilot.stats import bandits

PENDING, RUNNING = constants.PENDING, constants.RUNNING
PROMOTED, ROLLED_BACK = constants.PROMOTED, constants.ROLLED_BACK
CONCLUDED, FAILED = constants.CONCLUDED, constants.FAILED
TERMINAL = constants.TERMINAL_PHASES

SRM_MIN_REQUESTS = 200
"""Below this many requests in an interval the chi-square approximation is not worth testing."""

COND_SRM = "SampleRatioMismatch"
COND_GUARDRAIL = "GuardrailBreached"
COND_COMPLETED = "Completed"

STABLE = constants.STABLE

timestamp = shared_conditions.timestamp
"""RFC 3339 in UTC with a `Z`, second precision, as Kubernetes writes times."""
parse_timestamp = shared_conditions.parse_timestamp

ActionKind = Literal["promote", "roll-back", "pause", "remove-challengers"]


@dataclass(frozen=True)
class Action:
    """One thing the handler must do after writing the status (see the module docstring).

    kind: `promote` (set the ModelDeployment's model to `variant`'s), `roll-back` (`variant`
    breached a guardrail: an Event), `pause` (sample-ratio mismatch: an Event),
    `remove-challengers` (the experiment is over: delete its challengers). Every one is idempotent.
    """

    kind: ActionKind
    reason: str
    message: str
    variant: str | None = None


@dataclass(frozen=True)
class Outcome:
    status: dict[str, Any]
    actions: tuple[Action, ...]

    @property
    def phase(self) -> str:
        return str(self.status["phase"])

    @property
    def weights(self) -> dict[str, int]:
        """The split the routes must carry: `status.variants[].weight`."""
        return {v["name"]: int(v["weight"]) for v in self.status.get("variants") or []}


# ---- the typed state ----------------------------------------------------------------------------
@dataclass
class VariantState:
    """One entry of `status.variants`, typed. `from_status` fills what the API server dropped."""

    name: str
    model: dict[str, Any]
    posterior: dict[str, float]
    posterior_mean: float
    weight: int = 0
    requests: int = 0
    errors: int = 0
    rewards: int = 0
    reward_sum: float = 0.0
    reward_sum_squares: float = 0.0
    unsquared_rewards: int = 0
    unsquared_reward_sum: float = 0.0
    probability_to_be_best: float = 0.0
    error_rate: float = 0.0
    latency_p99_ms: float | None = None
    rolled_back: bool = False

    @classmethod
    def prior(cls, name: str, model: Mapping[str, Any], reward_type: str) -> VariantState:
        prior = posterior.prior(reward_type)
        return cls(
            name=name, model=dict(model), posterior=prior, posterior_mean=posterior.mean(prior)
        )

    @classmethod
    def from_status(cls, raw: Mapping[str, Any], reward_type: str) -> VariantState:
        """A status variant with every field present: the API server drops nulls (merge patch).

        A variant written by an operator of a version before sums of squares has no
        `rewardSumSquares`: its rewards so far count as rewards without squares (see `posterior`).
        """
        squared = "rewardSumSquares" in raw
        post = dict(raw.get("posterior") or posterior.prior(reward_type))
        return cls(
            name=str(raw["name"]),
            model=dict(raw.get("model") or {}),
            posterior=post,
            posterior_mean=raw.get("posteriorMean", posterior.mean(post)),
            weight=raw.get("weight", 0),
            requests=raw.get("requests", 0),
            errors=raw.get("errors", 0),
            rewards=raw.get("rewards", 0),
            reward_sum=raw.get("rewardSum", 0.0),
            reward_sum_squares=raw["rewardSumSquares"] if squared else 0.0,
            unsquared_rewards=raw.get("unsquaredRewards", 0) if squared else raw.get("rewards", 0),
            unsquared_reward_sum=raw.get("unsquaredRewardSum", 0.0)
            if squared
            else raw.get("rewardSum", 0.0),
            probability_to_be_best=raw.get("probabilityToBeBest", 0.0),
            error_rate=raw.get("errorRate", 0.0),
            latency_p99_ms=raw.get("latencyP99Ms"),
            rolled_back=bool(raw.get("rolledBack", False)),
        )

    def to_status(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "model": self.model,
            "weight": self.weight,
            "requests": self.requests,
            "errors": self.errors,
            "rewards": self.rewards,
            "rewardSum": self.reward_sum,
            "rewardSumSquares": self.reward_sum_squares,
            "unsquaredRewards": self.unsquared_rewards,
            "unsquaredRewardSum": self.unsquared_reward_sum,
            "posterior": self.posterior,
            "posteriorMean": self.posterior_mean,
            "probabilityToBeBest": self.probability_to_be_best,
            "errorRate": self.error_rate,
            "latencyP99Ms": self.latency_p99_ms,
            "rolledBack": self.rolled_back,
        }


@dataclass
class State:
    """Everything one update knows and has decided so far; each rule reads and extends it."""

    spec: spec_mod.ExperimentSpec
    now: datetime
    seed_key: str
    draws: int
    previous: dict[str, Any]
    variants: dict[str, VariantState]
    """By name, in `spec.variant_names` order (stable first)."""
    delta: Mapping[str, counts_mod.VariantCounts]
    observed: Mapping[str, Mapping[str, counts_mod.VariantCounts]]
    in_force: dict[str, float]
    """The split the routers were following over the interval (any scale)."""
    previous_weights: dict[str, int]
    conditions: Sequence[Mapping[str, Any]]
    srm: dict[str, Any]
    decision: dict[str, Any]
    breaches: list[guardrails.Breach] = field(default_factory=list)
    p_best: dict[str, float] = field(default_factory=dict)
    phase: str = RUNNING
    report: dict[str, Any] | None = None
    weights: dict[str, int] = field(default_factory=dict)
    actions: list[Action] = field(default_factory=list)

    @property
    def now_s(self) -> str:
        return timestamp(self.now)

    @property
    def names(self) -> tuple[str, ...]:
        return self.spec.variant_names

    @property
    def active(self) -> list[str]:
        """Variants still in the running: stable, and every challenger not rolled back."""
        return [n for n in self.names if n == STABLE or not self.variants[n].rolled_back]

    @property
    def paused(self) -> bool:
        return bool(self.srm.get("paused"))

    def set_condition(self, type_: str, *, status: bool, reason: str, message: str) -> None:
        self.conditions = conditions.set_condition(
            self.conditions,
            type_=type_,
            status=status,
            reason=reason,
            message=message,
            now=self.now_s,
        )


def initial_status(
    spec: spec_mod.ExperimentSpec,
    *,
    stable_model: Mapping[str, str],
    now: datetime,
    baseline: counts_mod.Observed | None = None,
) -> dict[str, Any]:
    """The status of a new Experiment: Pending, equal priors, no counts, weights not yet set.

    `baseline` is what the routers had counted when the Experiment started: the stable variant's
    traffic before it (all of it, while the challengers started) is not the experiment's, and
    counting it in the first interval would read as a sample-ratio mismatch.
    """
    models: dict[str, Mapping[str, Any]] = {STABLE: dict(stable_model)}
    for v in spec.variants:
        models[v.name] = {"name": v.model_name, "version": v.model_version}
    return {
        "phase": PENDING,
        "startTime": timestamp(now),
        "variants": [
            VariantState.prior(name, models[name], spec.reward_type).to_status()
            for name in spec.variant_names
        ],
        "counters": counts_mod.observed_to_json(baseline or {}),
        "srm": {"pValue": None, "mismatch": False, "paused": False},
        "decision": {"winner": None, "reason": "", "time": None},
        "conditions": [],
    }


def acknowledge_srm(status: Mapping[str, Any], *, now: datetime) -> dict[str, Any]:
    """The status after the user changed the spec: that is the acknowledgement that lifts a
    sample-ratio-mismatch pause (the status unchanged, as a copy, when nothing is paused)."""
    out: dict[str, Any] = json.loads(json.dumps(status))
    srm = out.get("srm") or {}
    if not srm.get("paused"):
        return out
    out["srm"] = {**srm, "paused": False, "mismatch": False}
    out["conditions"] = conditions.set_condition(
        out.get("conditions") or [],
        type_=COND_SRM,
        status=False,
        reason="Acknowledged",
        message="the spec changed; adaptation resumed",
        now=timestamp(now),
    )
    return out


# ---- the rules ----------------------------------------------------------------------------------
def accumulate(state: State) -> None:
    """Rule 1: this interval's increments into the totals, the error rate and the posterior."""
    reward_type = state.spec.reward_type
    for n in state.names:
        v, d = state.variants[n], state.delta[n]
        v.requests += d.requests
        v.errors += d.errors
        v.rewards += d.rewards
        # Sums are not rounded: a continuous reward may be of order 1e-6, and its variance is a
        # small difference of such sums. (Binary sums are whole numbers, exact in a float.)
        v.reward_sum = v.reward_sum + d.reward_sum
        v.reward_sum_squares = v.reward_sum_squares + (d.reward_sum_squares or 0.0)
        v.unsquared_rewards += d.unsquared_rewards
        v.unsquared_reward_sum = v.unsquared_reward_sum + d.unsquared_reward_sum
        if d.latency_p99_ms is not None:
            v.latency_p99_ms = d.latency_p99_ms
        v.error_rate = v.errors / v.requests if v.requests else 0.0
        v.posterior = posterior.update(
            reward_type,
            rewards=v.rewards,
            reward_sum=v.reward_sum,
            reward_sum_squares=v.reward_sum_squares,
            unsquared_rewards=v.unsquared_rewards,
            unsquared_reward_sum=v.unsquared_reward_sum,
        )
        v.posterior_mean = posterior.mean(v.posterior)


def check_guardrails(state: State) -> None:
    """Rule 2: a challenger breaching a guardrail is rolled back at once (weight 0 from now)."""
    spec = state.spec
    for n in state.names:
        v, d = state.variants[n], state.delta[n]
        if n != STABLE and v.rolled_back:
            continue
        breach = guardrails.check(
            n,
            interval=(d.errors, d.requests),
            total=(v.errors, v.requests),
            latency_p99_ms=v.latency_p99_ms,
            max_error_rate=spec.max_error_rate,
            max_latency_p99_ms=spec.max_latency_p99_ms,
        )
        if breach is not None:
            state.breaches.append(breach)
            if n != STABLE:
                v.rolled_back = True
    for b in state.breaches:
        if b.variant != STABLE:
            state.actions.append(Action("roll-back", b.reason, b.message, variant=b.variant))
    if state.breaches:
        state.set_condition(
            COND_GUARDRAIL,
            status=True,
            reason=state.breaches[0].reason,
            message="; ".join(b.message for b in state.breaches),
        )
    elif conditions.get(state.conditions, COND_GUARDRAIL) is None:
        state.set_condition(
            COND_GUARDRAIL,
            status=False,
            reason="WithinLimits",
            message="every variant is within its guardrails",
        )


def _seed(seed_key: str, posteriors: Sequence[Mapping[str, float]]) -> int:
    # Formatted floats: the API server may hand 1.0 back as 1, which must not change the seed.
    canon = [{k: f"{float(v):.12g}" for k, v in sorted(p.items())} for p in posteriors]
    blob = json.dumps([seed_key, canon]).encode()
    return int.from_bytes(hashlib.sha256(blob).digest()[:8], "big")


def probability_to_be_best(state: State) -> None:
    """Rule 3: P(best) among the active variants; rolled-back ones are out of the running."""
    active = state.active
    posts = [state.variants[n].posterior for n in active]
    rng = np.random.default_rng(_seed(state.seed_key, posts))
    p_active = posterior.probability_to_be_best(
        state.spec.reward_type, posts, draws=state.draws, rng=rng
    )
    state.p_best = dict.fromkeys(state.names, 0.0)
    state.p_best.update(dict(zip(active, p_active, strict=True)))
    for n in state.names:
        state.variants[n].probability_to_be_best = round(state.p_best[n], 6)


def sample_ratio_mismatch(state: State) -> None:
    """Rule 4: the interval's requests against the split in force; a mismatch pauses adaptation."""
    names, delta, in_force, srm = state.names, state.delta, state.in_force, state.srm
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
        srm["mismatch"] = p_srm < state.spec.srm_p_value
        if srm["mismatch"] and not srm.get("paused"):
            srm["paused"] = True
            msg = (
                f"requests {', '.join(f'{n}={delta[n].requests}' for n in names)} against weights "
                f"{', '.join(f'{n}={in_force.get(n, 0):.3g}' for n in names)}: chi-square "
                f"p = {p_srm:.2e} < {state.spec.srm_p_value:g}; adaptation paused"
            )
            state.actions.append(Action("pause", COND_SRM, msg))
            state.set_condition(COND_SRM, status=True, reason="ChiSquareFailed", message=msg)
    if conditions.get(state.conditions, COND_SRM) is None:
        state.set_condition(
            COND_SRM,
            status=False,
            reason="SplitAsExpected",
            message="requests follow the weights in force",
        )


def stopping(state: State) -> None:
    """Rule 5: roll back, conclude at maxDuration, or promote/conclude on enough evidence."""
    spec, active, p_best, now_s = state.spec, state.active, state.p_best, state.now_s
    elapsed = (state.now - parse_timestamp(state.previous["startTime"])).total_seconds()
    if len(active) == 1:
        state.phase = ROLLED_BACK
        state.decision = {
            "winner": STABLE,
            "reason": "every challenger breached a guardrail: "
            + "; ".join(b.message for b in state.breaches),
            "time": now_s,
        }
    elif spec.max_duration_s is not None and elapsed >= spec.max_duration_s:
        leader = max(active, key=lambda n: p_best[n])
        decided = p_best[leader] >= spec.probability_to_be_best
        state.phase = CONCLUDED
        state.decision = {
            "winner": leader if decided else None,
            "reason": (
                f"maxDuration {spec.max_duration_s:g}s reached; leader {leader} with "
                f"P(best) = {p_best[leader]:.3f}"
                + ("" if decided else f" < {spec.probability_to_be_best}: no winner")
                + (" (adaptation was paused by an SRM alarm)" if state.paused else "")
            ),
            "time": now_s,
        }
    elif not state.paused:
        by_name = state.variants
        enough = all(by_name[n].rewards >= spec.min_samples_per_variant for n in active)
        leader = max(active, key=lambda n: p_best[n])
        if enough and p_best[leader] >= spec.probability_to_be_best:
            # A rate reads well with 4 decimals; a continuous reward may be 1e-4 or 1e6.
            mean_format = ".4f" if spec.reward_type == constants.BINARY else ".6g"
            why = (
                f"{leader} (model version {by_name[leader].model.get('version')}) has P(best) = "
                f"{p_best[leader]:.4f} >= {spec.probability_to_be_best} with "
                + ", ".join(f"{n}: {by_name[n].rewards} rewards" for n in active)
                + f" (>= {spec.min_samples_per_variant} each); posterior means "
                + ", ".join(f"{n}: {by_name[n].posterior_mean:{mean_format}}" for n in active)
            )
            promote = leader != STABLE and spec.on_success == constants.PROMOTE
            state.phase = PROMOTED if promote else CONCLUDED
            state.decision = {"winner": leader, "reason": why, "time": now_s}
    if state.phase in TERMINAL:
        state.report = _report(state)


def _shares(state: State, active: Sequence[str]) -> list[float]:
    spec = state.spec
    if spec.policy_type == constants.FIXED:
        return [float(spec.fixed_weights.get(n, 0)) for n in active]
    if spec.policy_type == constants.EPSILON_GREEDY:
        means = [state.variants[n].posterior_mean for n in active]
        return [float(x) for x in bandits.epsilon_greedy_weights(means, epsilon=spec.epsilon)]
    return [state.p_best[n] for n in active]


def _bounded_weights(
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


def _stepped(
    spec: spec_mod.ExperimentSpec,
    active: Sequence[str],
    previous: Mapping[str, int],
    target: dict[str, int],
) -> dict[str, int]:
    """`target`, reached from `previous` by at most `spec.max_step` points per variant.

    The step is the convex combination previous + l (target - previous) with the largest l <= 1
    that moves no variant by more than max_step; both ends sum to 100 within the bounds, so every
    point between does too, and largest-remainder rounding keeps it there (it may add one point).
    No limit applies when the previous split is not a valid split of the same active variants
    (the first update, or a variant just rolled back: a rollback acts at once).
    """
    if spec.max_step is None:
        return target
    before = [previous.get(n, 0) for n in active]
    if sum(before) != 100 or any(previous.get(n, 0) for n in target if n not in active):
        return target
    after = [target[n] for n in active]
    widest = max(abs(a - b) for a, b in zip(after, before, strict=True))
    if widest <= spec.max_step:
        return target
    share = spec.max_step / widest
    mixed = [(b + share * (a - b)) / 100 for a, b in zip(after, before, strict=True)]
    ceiling = max(spec.max_weight, math.ceil(100 / len(active)))
    floor = min(spec.min_weight, 100 // len(active))
    rounded = bandits.bounded_weights(mixed, floor=floor, ceiling=ceiling)
    out = dict.fromkeys(target, 0)
    for n, w in zip(active, rounded, strict=True):
        out[n] = int(w)
    return out


def weights(state: State) -> None:
    """Rule 6: the new split: stable 100 % once over, frozen while paused, else the policy's."""
    names, active = state.names, state.active
    if state.phase in TERMINAL:
        state.weights = {n: (100 if n == STABLE else 0) for n in names}
    elif state.paused:
        # Frozen: the split in force stays; a rolled-back variant's share goes to stable.
        state.weights = {n: (state.previous_weights[n] if n in active else 0) for n in names}
        state.weights[STABLE] += 100 - sum(state.weights.values())
    else:
        target = _bounded_weights(state.spec, active, _shares(state, active))
        state.weights = _stepped(state.spec, active, state.previous_weights, target)
    for n in names:
        state.variants[n].weight = state.weights[n]


def completed(state: State) -> None:
    """Rule 7: the Completed condition, and what converges the world to a terminal phase."""
    done = state.phase in TERMINAL
    state.set_condition(
        COND_COMPLETED,
        status=done,
        reason=state.phase if done else ("Paused" if state.paused else constants.RUNNING),
        message=state.decision["reason"]
        if done
        else (
            "adaptation paused by a sample-ratio mismatch"
            if state.paused
            else "collecting evidence"
        ),
    )
    if done:
        state.actions.extend(_terminal_actions(state.phase, state.decision))


RULES: tuple[Callable[[State], None], ...] = (
    accumulate,
    check_guardrails,
    probability_to_be_best,
    sample_ratio_mismatch,
    stopping,
    weights,
    completed,
)
"""The rules of one update, in order (see the module docstring)."""


def _terminal_actions(phase: str, decision: Mapping[str, Any]) -> tuple[Action, ...]:
    reason = str(decision.get("reason", ""))
    promote = (
        (Action("promote", PROMOTED, reason, variant=decision.get("winner")),)
        if phase == PROMOTED
        else ()
    )
    return (*promote, Action("remove-challengers", phase, reason))


def _report(state: State) -> dict[str, Any]:
    return {
        "time": state.now_s,
        "reason": state.decision["reason"],
        "variants": [
            {
                "name": v.name,
                "modelVersion": v.model.get("version"),
                "requests": v.requests,
                "rewards": v.rewards,
                "posteriorMean": v.posterior_mean,
                "probabilityToBeBest": v.probability_to_be_best,
                "errorRate": v.error_rate,
                "latencyP99Ms": v.latency_p99_ms,
                "rolledBack": v.rolled_back,
            }
            for v in (state.variants[n] for n in state.names)
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
    """One update of the experiment: `RULES` over the state read from `previous` and `counts`.

    `previous` is the Experiment's status (as from `initial_status` or an earlier `decide`);
    `counts` the cumulative counters per source and variant as just read; `shares_in_force` the
    split the routers were following over the interval (see `inforce.expected_shares`; None: the
    weights in `previous`); `seed_key` names the experiment (namespace/name) so two experiments do
    not share random draws.
    """
    prev = json.loads(json.dumps(previous))  # a deep copy that also proves the status is JSON
    if prev.get("phase") in TERMINAL:
        decision = prev.get("decision") or {}
        return Outcome(prev, _terminal_actions(prev["phase"], decision))
    state = _read_state(spec, prev, counts=counts, shares_in_force=shares_in_force, now=now)
    state.seed_key, state.draws = seed_key, draws
    for rule in RULES:
        rule(state)
    status: dict[str, Any] = {
        **prev,
        "phase": state.phase,
        "lastUpdateTime": state.now_s,
        "variants": [state.variants[n].to_status() for n in state.names],
        "counters": counts_mod.observed_to_json(state.observed),
        "srm": state.srm,
        "decision": state.decision,
        "conditions": list(state.conditions),
    }
    if state.report is not None:
        status["report"] = state.report
    return Outcome(status, tuple(state.actions))


def _read_state(
    spec: spec_mod.ExperimentSpec,
    prev: dict[str, Any],
    *,
    counts: counts_mod.Observed,
    shares_in_force: Mapping[str, float] | None,
    now: datetime,
) -> State:
    by_name = {
        v["name"]: VariantState.from_status(v, spec.reward_type) for v in prev.get("variants") or []
    }
    # A variant added to the spec mid-experiment starts from the prior; one removed is dropped.
    for v in spec.variants:
        if v.name not in by_name:
            model = {"name": v.model_name, "version": v.model_version}
            by_name[v.name] = VariantState.prior(v.name, model, spec.reward_type)
    if STABLE not in by_name:
        by_name[STABLE] = VariantState.prior(STABLE, {}, spec.reward_type)
    names = spec.variant_names
    previous_weights = {n: int(by_name[n].weight) for n in names}
    observed_before = counts_mod.observed_from_json(prev.get("counters"), field="status.counters")
    return State(
        spec=spec,
        now=now,
        seed_key="",
        draws=0,
        previous=prev,
        variants={n: by_name[n] for n in names},
        delta=counts_mod.increments(observed_before, counts, variants=names),
        observed=counts_mod.merge_observed(observed_before, counts),
        in_force=dict(shares_in_force)
        if shares_in_force is not None
        else {n: float(w) for n, w in previous_weights.items()},
        previous_weights=previous_weights,
        conditions=list(prev.get("conditions") or []),
        srm=dict(prev.get("srm") or {}),
        decision=dict(prev.get("decision") or {"winner": None, "reason": "", "time": None}),
    )

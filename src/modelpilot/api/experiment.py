"""The Experiment CRD: an online experiment (challengers, policy, guardrails) on a ModelDeployment.

Design decision: the fixed split is written as `policy.stableWeight` plus a `weight` on each
challenger, so "the weights sum to 100" is one CEL rule over the spec (the stable variant is the
ModelDeployment's own model and has no entry in `variants`; its name `stable` is reserved).
"""

from __future__ import annotations

from dataclasses import dataclass

from modelpilot.api import common, constants
from modelpilot.api import schema as s

KIND = constants.EXPERIMENT_KIND
PLURAL = "experiments"

POLICY_TYPES: list[str] = list(constants.POLICY_TYPES)
REWARD_TYPES: list[str] = list(constants.REWARD_TYPES)
PHASES: list[str] = list(constants.PHASES)
MAX_VARIANTS = 8
VARIANT_NAME_MAX = 20


@dataclass(frozen=True)
class Bound:
    """A numeric spec field's default and bounds, written once: the CRD schema below renders them
    and the operator's parser (`modelpilot.operator.experiment.spec`) checks them."""

    default: int | float | None
    minimum: int | float
    maximum: int | float
    exclusive_minimum: bool = False
    exclusive_maximum: bool = False

    def admits(self, value: float) -> bool:
        above = value > self.minimum if self.exclusive_minimum else value >= self.minimum
        below = value < self.maximum if self.exclusive_maximum else value <= self.maximum
        return above and below

    def describe(self) -> str:
        """`[0, 100]`, `(0, 600000]`, `[0.5, 1)`."""
        low = "(" if self.exclusive_minimum else "["
        high = ")" if self.exclusive_maximum else "]"
        return f"{low}{self.minimum:g}, {self.maximum:g}{high}"


REPLICAS = Bound(default=1, minimum=0, maximum=100)
VARIANT_WEIGHT = Bound(default=None, minimum=0, maximum=100)
MIN_WEIGHT = Bound(default=5, minimum=0, maximum=100)
MAX_WEIGHT = Bound(default=90, minimum=0, maximum=100)
MAX_STEP = Bound(default=None, minimum=1, maximum=100)
"""`policy.maxStep`: no default; an experiment without it moves straight to the policy's split."""
EPSILON = Bound(default=0.1, minimum=0, maximum=1)
STABLE_WEIGHT = Bound(default=None, minimum=0, maximum=100)
MIN_SAMPLES_PER_VARIANT = Bound(default=1000, minimum=1, maximum=1_000_000_000)
PROBABILITY_TO_BE_BEST = Bound(default=0.95, minimum=0.5, maximum=1, exclusive_maximum=True)
MAX_ERROR_RATE = Bound(default=0.02, minimum=0, maximum=1)
MAX_LATENCY_P99_MS = Bound(default=250, minimum=0, maximum=600_000, exclusive_minimum=True)
SRM_P_VALUE = Bound(default=0.001, minimum=1e-12, maximum=0.5)
"""The sample-ratio-mismatch alarm level. Not a CRD field (the API server prunes it): the parser
reads `spec.stopping.srmPValue` only from specs handed to it directly (tests, simulations)."""

DEFAULT_POLICY = constants.THOMPSON
DEFAULT_REWARD = constants.BINARY
DEFAULT_ON_SUCCESS = constants.PROMOTE
DEFAULT_UPDATE_INTERVAL = "30s"
DEFAULT_MAX_DURATION = "24h"


def _int(description: str, bound: Bound) -> s.Schema:
    if bound.exclusive_minimum or bound.exclusive_maximum:
        raise ValueError("integer bounds are inclusive in this API")
    return s.integer(
        description,
        default=None if bound.default is None else int(bound.default),
        minimum=int(bound.minimum),
        maximum=int(bound.maximum),
    )


def _num(description: str, bound: Bound) -> s.Schema:
    return s.number(
        description,
        default=bound.default,
        minimum=bound.minimum,
        maximum=bound.maximum,
        exclusive_minimum=bound.exclusive_minimum or None,
        exclusive_maximum=bound.exclusive_maximum or None,
    )


def _variant() -> s.Schema:
    return s.obj(
        "A challenger variant.",
        {
            "name": s.string(
                "Variant name: a DNS-1123 label, unique in the experiment; `stable` is reserved "
                "for the ModelDeployment's own model.",
                pattern=s.DNS1123_LABEL,
                min_length=1,
                max_length=VARIANT_NAME_MAX,
            ),
            "model": common.model_reference("The registered model version this variant serves."),
            "replicas": _int("Model-server pods for this variant.", REPLICAS),
            "weight": _int(
                "Traffic percentage under the fixed policy (ignored by the bandit policies).",
                VARIANT_WEIGHT,
            ),
        },
        required=["name", "model"],
    )


def _spec() -> s.Schema:
    return s.obj(
        "Desired experiment: challengers, traffic policy, reward, stopping rule and guardrails.",
        {
            "deploymentRef": s.string(
                "Name of the ModelDeployment (same namespace) whose stable model is the control.",
                pattern=s.DNS1123_LABEL,
                min_length=1,
                max_length=63,
            ),
            "variants": s.array(
                "Challenger variants (the stable variant is implicit).",
                _variant(),
                min_items=1,
                max_items=MAX_VARIANTS,
                rules=[
                    s.rule(
                        "self.all(v, self.exists_one(w, w.name == v.name))",
                        "variant names must be unique",
                    ),
                    s.rule(
                        f"self.all(v, v.name != '{constants.STABLE}')",
                        "variant name 'stable' is reserved for the ModelDeployment's own model",
                    ),
                ],
            ),
            "policy": s.obj(
                "How traffic is split between the stable variant and the challengers.",
                {
                    "type": s.string(
                        "thompson (Beta/Gaussian Thompson sampling), epsilon-greedy, or fixed.",
                        enum=POLICY_TYPES,
                        default=DEFAULT_POLICY,
                        max_length=16,
                    ),
                    "minWeight": _int(
                        "Smallest traffic percentage any variant gets (exploration floor).",
                        MIN_WEIGHT,
                    ),
                    "maxWeight": _int(
                        "Largest traffic percentage any variant gets before the decision.",
                        MAX_WEIGHT,
                    ),
                    "maxStep": _int(
                        "Largest change of any variant's traffic percentage at one update, as "
                        "Flagger's stepWeight (largest-remainder rounding may add one point). "
                        "Damps the split while the evidence is thin; guardrail rollbacks and the "
                        "decision still act at once. Unset: no limit.",
                        MAX_STEP,
                    ),
                    "epsilon": _num("Exploration probability of epsilon-greedy.", EPSILON),
                    "stableWeight": _int(
                        "Traffic percentage of the stable variant under the fixed policy.",
                        STABLE_WEIGHT,
                    ),
                    "updateInterval": s.string(
                        "How often the posterior and the routes are updated (e.g. `30s`).",
                        default=DEFAULT_UPDATE_INTERVAL,
                        pattern=s.DURATION,
                        max_length=32,
                    ),
                },
                # The per-field defaults spelled out: the API server checks the CEL rule below
                # against this default, to which the per-field defaults are not applied.
                default={
                    "type": DEFAULT_POLICY,
                    "minWeight": MIN_WEIGHT.default,
                    "maxWeight": MAX_WEIGHT.default,
                    "epsilon": EPSILON.default,
                    "updateInterval": DEFAULT_UPDATE_INTERVAL,
                },
                rules=[
                    s.rule(
                        "self.minWeight <= self.maxWeight",
                        "minWeight must be less than or equal to maxWeight",
                        field_path=".minWeight",
                    ),
                ],
            ),
            "reward": s.obj(
                "What the feedback reward is.",
                {
                    "type": s.string(
                        "binary (0/1, Beta-Bernoulli) or continuous (Gaussian).",
                        enum=REWARD_TYPES,
                        default=DEFAULT_REWARD,
                        max_length=16,
                    )
                },
                default={},
            ),
            "stopping": s.obj(
                "When the experiment may decide.",
                {
                    "minSamplesPerVariant": _int(
                        "Requests each variant must receive before a decision.",
                        MIN_SAMPLES_PER_VARIANT,
                    ),
                    "probabilityToBeBest": _num(
                        "Posterior probability to be best that declares a winner.",
                        PROBABILITY_TO_BE_BEST,
                    ),
                    "maxDuration": s.string(
                        "Longest the experiment runs before it concludes without a winner.",
                        default=DEFAULT_MAX_DURATION,
                        pattern=s.DURATION,
                        max_length=32,
                    ),
                },
                default={},
            ),
            "guardrails": s.obj(
                "Service-level limits; a challenger breaching one is rolled back.",
                {
                    "maxErrorRate": _num(
                        "Largest error rate allowed (a fraction in [0, 1]).", MAX_ERROR_RATE
                    ),
                    "maxLatencyP99Ms": _num(
                        "Largest 99th-percentile latency allowed, in milliseconds.",
                        MAX_LATENCY_P99_MS,
                    ),
                },
                default={},
            ),
            "onSuccess": s.string(
                "promote (the winner becomes the ModelDeployment's model) or report (only record).",
                enum=list(constants.ON_SUCCESS),
                default=DEFAULT_ON_SUCCESS,
                max_length=16,
            ),
        },
        required=["deploymentRef", "variants"],
        rules=[
            s.rule(
                "self.policy.type != 'fixed' || (has(self.policy.stableWeight) && "
                "self.variants.all(v, has(v.weight)))",
                "policy.type fixed needs policy.stableWeight and a weight on every variant",
                field_path=".policy",
            ),
            s.rule(
                "self.policy.type != 'fixed' || !has(self.policy.stableWeight) || "
                "self.policy.stableWeight + "
                "self.variants.map(v, has(v.weight) ? v.weight : 0).sum() == 100",
                "fixed weights must sum to 100 (policy.stableWeight plus every variants[].weight)",
                field_path=".policy",
            ),
        ],
    )


def _variant_status() -> s.Schema:
    return s.obj(
        "Observed state of one variant (the stable one included).",
        {
            "name": s.string("Variant name.", max_length=20),
            "model": common.resolved_model("Model version the variant serves."),
            "weight": s.number("Traffic percentage in force.", minimum=0, maximum=100),
            "requests": s.integer("Requests routed to the variant.", minimum=0),
            "errors": s.integer("Requests the variant answered with an error.", minimum=0),
            "rewards": s.number("Rewards (feedback calls) joined to the variant.", minimum=0),
            "rewardSum": s.number("Sum of the reward values joined to the variant."),
            "rewardSumSquares": s.number(
                "Sum of the squared reward values, over the rewards whose squares the routers "
                "reported (all but unsquaredRewards): with rewards and rewardSum, the variance of "
                "a continuous reward.",
                minimum=0,
            ),
            "unsquaredRewards": s.number(
                "Rewards counted without their squares (from routers, or a status, of a version "
                "before sums of squares): they enter the posterior mean, not the variance.",
                minimum=0,
            ),
            "unsquaredRewardSum": s.number("Sum of the rewards counted without their squares."),
            "posteriorMean": s.number("Mean of the variant's reward posterior."),
            "rolledBack": s.boolean("The variant breached a guardrail and gets no traffic."),
            "posterior": s.obj(
                "Posterior of the variant's reward: alpha/beta (binary) or mean/variance "
                "(continuous).",
                {
                    "alpha": s.number("Beta posterior alpha."),
                    "beta": s.number("Beta posterior beta."),
                    "mean": s.number("Gaussian posterior mean."),
                    "variance": s.number("Gaussian posterior variance."),
                },
            ),
            "probabilityToBeBest": s.number(
                "Posterior probability that the variant is best.", minimum=0, maximum=1
            ),
            "errorRate": s.number("Observed error rate.", minimum=0, maximum=1),
            "latencyP99Ms": s.number("Observed 99th-percentile latency (ms).", minimum=0),
        },
    )


def _counters() -> s.Schema:
    # Written by the Experiment controller: the routers' cumulative counters as last read, per
    # source (router pod or URL) and variant, so increments survive an operator restart and a
    # router restart (a counter that went down) is recognised.
    counts = s.obj(
        "Cumulative counters of one variant at one source.",
        {
            "requests": s.number("Requests.", minimum=0),
            "errors": s.number("Errors.", minimum=0),
            "rewards": s.number("Rewards joined.", minimum=0),
            "rewardSum": s.number("Sum of reward values."),
            "rewardSumSquares": s.number(
                "Sum of squared reward values (absent: the source does not report it).", minimum=0
            ),
        },
    )
    per_source: s.Schema = {
        "type": "object",
        "description": "Variant name -> cumulative counters.",
        "additionalProperties": counts,
    }
    return {
        "type": "object",
        "description": "The routers' cumulative counters as last read, per source and variant "
        "(the experiment loop's bookkeeping; increments are taken against them).",
        "additionalProperties": per_source,
    }


def _report() -> s.Schema:
    return s.obj(
        "Summary written when the experiment ends (promoted, rolled back or concluded).",
        {
            "time": s.string("When.", fmt="date-time", max_length=64),
            "reason": s.string("Why the experiment ended.", max_length=1024),
            "variants": s.array(
                "Final statistics per variant.",
                s.obj(
                    "One variant's final statistics.",
                    {
                        "name": s.string("Variant name.", max_length=20),
                        "modelVersion": s.string("Model version.", max_length=10),
                        "requests": s.integer("Requests.", minimum=0),
                        "rewards": s.number("Rewards joined.", minimum=0),
                        "posteriorMean": s.number("Posterior mean reward."),
                        "probabilityToBeBest": s.number("P(best).", minimum=0, maximum=1),
                        "errorRate": s.number("Error rate.", minimum=0, maximum=1),
                        "latencyP99Ms": s.number("p99 latency (ms).", minimum=0),
                        "rolledBack": s.boolean("Rolled back by a guardrail."),
                    },
                ),
                max_items=MAX_VARIANTS + 1,
            ),
        },
    )


def _status() -> s.Schema:
    return s.obj(
        "Observed state, written by the operator.",
        {
            "observedGeneration": s.integer("metadata.generation last reconciled.", minimum=0),
            "phase": s.string("Summary for people.", enum=PHASES, max_length=16),
            "startTime": s.string(
                "When the experiment started running.", fmt="date-time", max_length=64
            ),
            "variants": s.array(
                "Per-variant statistics, stable first.",
                _variant_status(),
                max_items=MAX_VARIANTS + 1,
            ),
            "traffic": s.string(
                "Traffic split in force, e.g. `stable=80,challenger=20`.", max_length=512
            ),
            "srm": s.obj(
                "Sample-ratio-mismatch check.",
                {
                    "pValue": s.number(
                        "Chi-square p-value of the observed split.", minimum=0, maximum=1
                    ),
                    "mismatch": s.boolean("Whether the split mismatches the intended one."),
                    "paused": s.boolean(
                        "Adaptation is paused by a mismatch until the spec changes."
                    ),
                    "expected": {
                        "type": "object",
                        "description": "Variant -> share of requests the routes in force meant "
                        "it to get at the last update (one candidate split of the next test).",
                        "additionalProperties": s.number("A share in [0, 1].", minimum=0),
                    },
                },
            ),
            "lastUpdateTime": s.string(
                "When the experiment loop last updated the status.", fmt="date-time", max_length=64
            ),
            "counters": _counters(),
            "report": _report(),
            "decision": s.obj(
                "The experiment's decision, once taken.",
                {
                    "winner": s.string("Winning variant.", max_length=20),
                    "reason": s.string("Why.", max_length=1024),
                    "time": s.string("When.", fmt="date-time", max_length=64),
                },
            ),
            "conditions": common.conditions("Ready, Progressing, Degraded."),
        },
    )


def build_crd() -> dict[str, object]:
    return common.crd(
        kind=KIND,
        plural=PLURAL,
        short_names=["exp"],
        description="Experiment runs an online experiment (Thompson sampling, epsilon-greedy or a "
        "fixed split) of challenger models against a ModelDeployment's stable model.",
        spec=_spec(),
        status=_status(),
        root_rules=common.NAME_RULES,
        columns=[
            common.READY_COLUMN,
            common.column("Deployment", ".spec.deploymentRef", "ModelDeployment under test."),
            common.column("Phase", ".status.phase", "Lifecycle phase."),
            common.column("Traffic", ".status.traffic", "Traffic split in force."),
            common.column("Winner", ".status.decision.winner", "Winning variant, once decided."),
            common.AGE_COLUMN,
        ],
    )

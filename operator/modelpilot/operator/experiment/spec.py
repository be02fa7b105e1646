"""Parse and validate an Experiment's `spec` (the camelCase dict the API server stores).

The CRD's schema and CEL rules already reject most bad specs at admission; this parser repeats the
checks the decision relies on, so the pure decision can be fed a dict from a test or an old object
and still fail with one clear `InputError` naming the field, never a KeyError deep in the maths.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from modelpilot import errors
from modelpilot.api import constants
from modelpilot.api import experiment as crd

STABLE = constants.STABLE
"""The stable variant's name (the ModelDeployment's current model), per docs/architecture.md."""

POLICY_TYPES = constants.POLICY_TYPES
REWARD_TYPES = constants.REWARD_TYPES
ON_SUCCESS = constants.ON_SUCCESS

_DNS1123 = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


@dataclass(frozen=True)
class Variant:
    name: str
    model_name: str
    model_version: str
    replicas: int
    weight: int | None = None
    """Traffic percentage under the fixed policy (the CRD's `variants[].weight`)."""


@dataclass(frozen=True)
class ExperimentSpec:
    deployment_ref: str
    variants: tuple[Variant, ...]
    policy_type: str
    min_weight: int
    max_weight: int
    update_interval_s: float
    max_step: int | None
    epsilon: float
    fixed_weights: Mapping[str, int]
    reward_type: str
    min_samples_per_variant: int
    probability_to_be_best: float
    max_duration_s: float | None
    max_error_rate: float | None
    max_latency_p99_ms: float | None
    on_success: str
    srm_p_value: float

    @property
    def variant_names(self) -> tuple[str, ...]:
        """All arms, the stable one first."""
        return (STABLE, *(v.name for v in self.variants))


def parse_duration(text: object, *, field: str) -> float:
    """Seconds in a Go-style duration (`30s`, `1h30m`, `500ms`, `2d`); a bare number is seconds."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        if text <= 0:
            raise errors.InputError(f"{field}: must be a positive duration, got {text!r}")
        return float(text)
    if not isinstance(text, str) or not text:
        raise errors.InputError(f"{field}: must be a duration such as 30s, 5m or 24h, got {text!r}")
    pos, total = 0, 0.0
    for match in _DURATION_PART.finditer(text):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
        pos = match.end()
    if pos != len(text) or total <= 0:
        raise errors.InputError(
            f"{field}: must be a positive duration such as 30s, 5m or 24h, got {text!r}"
        )
    return total


def update_interval(spec: Mapping[str, Any]) -> float:
    """`spec.policy.updateInterval` in seconds; the CRD's default when it is absent or invalid
    (an invalid spec fails its pass with InvalidSpec, but the daemon still needs a period)."""
    field = "spec.policy.updateInterval"
    policy = spec.get("policy")
    given = policy.get("updateInterval") if isinstance(policy, Mapping) else None
    try:
        return parse_duration(given or crd.DEFAULT_UPDATE_INTERVAL, field=field)
    except errors.InputError:
        return parse_duration(crd.DEFAULT_UPDATE_INTERVAL, field=field)


def _mapping(value: object, *, field: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise errors.InputError(f"{field}: must be an object, got {type(value).__name__}")
    return value


def _bounded(value: object, bound: crd.Bound, *, field: str, integer: bool = False) -> float:
    """`value` checked against a bound of the CRD (`modelpilot.api.experiment`), the same one the
    API server checks at admission, so an old object or a test's dict fails the same way."""
    ok_type = isinstance(value, int) if integer else isinstance(value, (int, float))
    if isinstance(value, bool) or not ok_type:
        kind = "an integer" if integer else "a number"
        raise errors.InputError(f"{field}: must be {kind} in {bound.describe()}, got {value!r}")
    assert isinstance(value, (int, float))  # narrowed above; for mypy only
    if not bound.admits(value):
        raise errors.InputError(f"{field}: must be in {bound.describe()}, got {value!r}")
    return float(value)


def _choice(value: object, *, field: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise errors.InputError(f"{field}: must be one of {', '.join(allowed)}, got {value!r}")
    assert isinstance(value, str)
    return value


def _variants(raw: object) -> tuple[Variant, ...]:
    if not isinstance(raw, list) or not raw:
        raise errors.InputError("spec.variants: must be a non-empty list of challenger variants")
    out: list[Variant] = []
    seen = {STABLE}
    for i, item in enumerate(raw):
        field = f"spec.variants[{i}]"
        v = _mapping(item, field=field)
        name = v.get("name")
        if (
            not isinstance(name, str)
            or not _DNS1123.match(name)
            or len(name) > crd.VARIANT_NAME_MAX
        ):
            raise errors.InputError(
                f"{field}.name: must be a DNS-1123 label of at most {crd.VARIANT_NAME_MAX} "
                f"characters, got {name!r}"
            )
        if name in seen:
            raise errors.InputError(
                f"{field}.name: {name!r} is used twice or is reserved "
                "('stable' is the current model)"
            )
        seen.add(name)
        model = _mapping(v.get("model"), field=f"{field}.model")
        model_name = model.get("name")
        version = model.get("version")
        if not isinstance(model_name, str) or not model_name:
            raise errors.InputError(f"{field}.model.name: must be a registered model name")
        if isinstance(version, int) and not isinstance(version, bool):
            version = str(version)
        if not isinstance(version, str) or not version.isdigit():
            raise errors.InputError(
                f"{field}.model.version: must be a registered version number, got {version!r}"
            )
        replicas = v.get("replicas", crd.REPLICAS.default)
        _bounded(replicas, crd.REPLICAS, field=f"{field}.replicas", integer=True)
        weight = v.get("weight")
        if weight is not None:
            _bounded(weight, crd.VARIANT_WEIGHT, field=f"{field}.weight", integer=True)
        out.append(Variant(name, model_name, version, int(replicas), weight))
    return tuple(out)


def parse_spec(spec: Mapping[str, Any]) -> ExperimentSpec:
    """The validated spec; raises `InputError` naming the first bad field."""
    ref = spec.get("deploymentRef")
    if not isinstance(ref, str) or not ref:
        raise errors.InputError("spec.deploymentRef: must name a ModelDeployment in this namespace")
    variants = _variants(spec.get("variants"))
    names = (STABLE, *(v.name for v in variants))

    policy = _mapping(spec.get("policy"), field="spec.policy")
    policy_type = _choice(
        policy.get("type", crd.DEFAULT_POLICY), field="spec.policy.type", allowed=POLICY_TYPES
    )
    min_w = int(
        _bounded(
            policy.get("minWeight", crd.MIN_WEIGHT.default),
            crd.MIN_WEIGHT,
            field="spec.policy.minWeight",
            integer=True,
        )
    )
    max_w = int(
        _bounded(
            policy.get("maxWeight", crd.MAX_WEIGHT.default),
            crd.MAX_WEIGHT,
            field="spec.policy.maxWeight",
            integer=True,
        )
    )
    if min_w > max_w:
        raise errors.InputError(
            f"spec.policy.minWeight: must not exceed maxWeight ({min_w} > {max_w})"
        )
    if min_w * len(names) > 100 or max_w * len(names) < 100:
        raise errors.InputError(
            f"spec.policy.minWeight/maxWeight: with {len(names)} variants the bounds "
            f"[{min_w}, {max_w}] cannot give weights summing to 100"
        )
    interval = parse_duration(
        policy.get("updateInterval", crd.DEFAULT_UPDATE_INTERVAL),
        field="spec.policy.updateInterval",
    )
    max_step = (
        None
        if policy.get("maxStep") is None
        else int(
            _bounded(policy["maxStep"], crd.MAX_STEP, field="spec.policy.maxStep", integer=True)
        )
    )
    epsilon = _bounded(
        policy.get("epsilon", crd.EPSILON.default), crd.EPSILON, field="spec.policy.epsilon"
    )
    fixed: dict[str, int] = {}
    if policy_type == constants.FIXED:
        # The CRD's shape: policy.stableWeight plus a weight on every challenger, summing to 100.
        stable_w = policy.get("stableWeight")
        if stable_w is None:
            raise errors.InputError("spec.policy.stableWeight: required when policy.type is fixed")
        fixed[STABLE] = int(
            _bounded(stable_w, crd.STABLE_WEIGHT, field="spec.policy.stableWeight", integer=True)
        )
        for i, v in enumerate(variants):
            if v.weight is None:
                raise errors.InputError(
                    f"spec.variants[{i}].weight: required when policy.type is fixed"
                )
            fixed[v.name] = v.weight
        if sum(fixed.values()) != 100:
            raise errors.InputError(
                "spec.policy.stableWeight: the fixed weights (stableWeight plus every "
                f"variants[].weight) must sum to 100, got {sum(fixed.values())}"
            )

    reward = _mapping(spec.get("reward"), field="spec.reward")
    reward_type = _choice(
        reward.get("type", crd.DEFAULT_REWARD), field="spec.reward.type", allowed=REWARD_TYPES
    )

    stopping = _mapping(spec.get("stopping"), field="spec.stopping")
    min_samples = int(
        _bounded(
            stopping.get("minSamplesPerVariant", crd.MIN_SAMPLES_PER_VARIANT.default),
            crd.MIN_SAMPLES_PER_VARIANT,
            field="spec.stopping.minSamplesPerVariant",
            integer=True,
        )
    )
    p_best = _bounded(
        stopping.get("probabilityToBeBest", crd.PROBABILITY_TO_BE_BEST.default),
        crd.PROBABILITY_TO_BE_BEST,
        field="spec.stopping.probabilityToBeBest",
    )
    max_duration = stopping.get("maxDuration", crd.DEFAULT_MAX_DURATION)
    max_duration_s = (
        None
        if max_duration is None
        else parse_duration(max_duration, field="spec.stopping.maxDuration")
    )
    srm_p = _bounded(
        stopping.get("srmPValue", crd.SRM_P_VALUE.default),
        crd.SRM_P_VALUE,
        field="spec.stopping.srmPValue",
    )

    guard = _mapping(spec.get("guardrails"), field="spec.guardrails")
    max_err = guard.get("maxErrorRate", crd.MAX_ERROR_RATE.default)
    max_lat = guard.get("maxLatencyP99Ms", crd.MAX_LATENCY_P99_MS.default)
    on_success = _choice(
        spec.get("onSuccess", crd.DEFAULT_ON_SUCCESS), field="spec.onSuccess", allowed=ON_SUCCESS
    )
    return ExperimentSpec(
        deployment_ref=ref,
        variants=variants,
        policy_type=policy_type,
        min_weight=min_w,
        max_weight=max_w,
        update_interval_s=interval,
        max_step=max_step,
        epsilon=epsilon,
        fixed_weights=fixed,
        reward_type=reward_type,
        min_samples_per_variant=min_samples,
        probability_to_be_best=p_best,
        max_duration_s=max_duration_s,
        max_error_rate=None
        if max_err is None
        else _bounded(max_err, crd.MAX_ERROR_RATE, field="spec.guardrails.maxErrorRate"),
        max_latency_p99_ms=None
        if max_lat is None
        else _bounded(max_lat, crd.MAX_LATENCY_P99_MS, field="spec.guardrails.maxLatencyP99Ms"),
        on_success=on_success,
        srm_p_value=srm_p,
    )

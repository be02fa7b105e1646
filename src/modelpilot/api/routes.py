"""The routes document: the traffic split the operator writes and every router follows.

One typed model, two sides. The operator builds a `Routes` (`modelpilot.operator.builders.routes`)
and stores `dumps(routes)` in the `<deployment>-routes` ConfigMap under `constants.ROUTES_KEY`; the
router reads it back with `loads` (`modelpilot.router.routes`), and the experiment loop reads the
split in force with the same `loads` (`expected_shares`). The format is pinned in
docs/architecture.md:

    {"deployment": "iris", "stable": "stable",
     "policy": {"type": "thompson", "epsilon": 0.1, "stickyHeader": null},
     "variants": [{"name": "stable", "url": "http://iris-stable.ns.svc:80", "weight": 80,
                   "modelVersion": "3", "posterior": {"alpha": 1.0, "beta": 1.0}}, ...]}

Errors: `parse` and `loads` are the one entry point that validates a document, and the one
exception they raise is `InvalidRoutes` (an `InputError`), whose message names the first bad field
(`routes.variants[1].url: ...`). A reader that must keep serving (the router) catches exactly it and
keeps the last good routes.

Design decision: plain frozen dataclasses, not pydantic models. The router reads these objects on
every request (`Routes.variants`, `Variant.weight`), the document is small and validated once per
change, and the messages name the field the way the rest of modelpilot does. Pure.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from modelpilot import errors
from modelpilot.api import constants


class InvalidRoutes(errors.InputError):
    """The routes document is invalid; the message names the first bad field."""


@dataclass(frozen=True)
class Beta:
    """Beta posterior of a binary reward."""

    alpha: float
    beta: float

    @property
    def mean(self) -> float:
        return self.alpha / (self.alpha + self.beta)

    def to_json(self) -> dict[str, float]:
        return {"alpha": self.alpha, "beta": self.beta}


@dataclass(frozen=True)
class Gaussian:
    """Gaussian posterior of the mean of a continuous reward."""

    mean: float
    variance: float

    def to_json(self) -> dict[str, float]:
        return {"mean": self.mean, "variance": self.variance}


Posterior = Beta | Gaussian

PRIOR = Beta(1.0, 1.0)
"""The posterior of a variant that lists none: the uniform Beta(1, 1) prior."""


@dataclass(frozen=True)
class Variant:
    name: str
    url: str
    weight: float
    """Traffic percentage in [0, 100]; the router normalises the weights of all variants."""
    model_version: str | None
    posterior: Posterior = PRIOR


REWARD_BOUND = 1e12
"""Largest magnitude a declared reward range may reach: sums of squares of billions of rewards
stay finite in a float64 (1e24 each)."""


@dataclass(frozen=True)
class Reward:
    """What a reward posted to the routers' `/feedback` may be: the Experiment's `spec.reward`.

    `binary`: exactly 0 or 1. `continuous`: a finite number in [minimum, maximum] (each bound
    optional; the router's own default bound applies where one is missing).
    """

    type: constants.RewardType = constants.BINARY
    minimum: float | None = None
    maximum: float | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.type}
        if self.minimum is not None:
            out["minimum"] = self.minimum
        if self.maximum is not None:
            out["maximum"] = self.maximum
        return out


@dataclass(frozen=True)
class Policy:
    type: constants.PolicyType = constants.FIXED
    epsilon: float = 0.1
    sticky_header: str | None = None
    reward: Reward | None = None
    """The declared reward; None when no Experiment declares one (any bounded finite number)."""


@dataclass(frozen=True)
class Routes:
    deployment: str
    stable: str
    policy: Policy
    variants: tuple[Variant, ...]

    def variant(self, name: str) -> Variant:
        for v in self.variants:
            if v.name == name:
                return v
        raise KeyError(name)

    @property
    def stable_index(self) -> int:
        return [v.name for v in self.variants].index(self.stable)


# ---- writing -----------------------------------------------------------------------------------
def _number_json(value: float) -> float | int:
    # Whole weights as integers (`"weight":80`), as the operator has always written them.
    return int(value) if float(value).is_integer() else value


def dump(routes: Routes) -> dict[str, Any]:
    """The JSON-ready document (key order as in docs/architecture.md)."""
    return {
        "deployment": routes.deployment,
        "stable": routes.stable,
        "policy": {
            "type": routes.policy.type,
            "epsilon": routes.policy.epsilon,
            "stickyHeader": routes.policy.sticky_header,
            **({"reward": routes.policy.reward.to_json()} if routes.policy.reward else {}),
        },
        "variants": [
            {
                "name": v.name,
                "url": v.url,
                "weight": _number_json(v.weight),
                "modelVersion": v.model_version,
                "posterior": v.posterior.to_json(),
            }
            for v in routes.variants
        ],
    }


def dumps(routes: Routes) -> str:
    """The compact JSON text stored in the ConfigMap."""
    return json.dumps(dump(routes), sort_keys=False, separators=(",", ":"))


# ---- reading -----------------------------------------------------------------------------------
def _number(value: Any, where: str, *, low: float, high: float = math.inf) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidRoutes(f"{where}: expected a number, got {value!r}")
    if not low <= value <= high:
        raise InvalidRoutes(f"{where}: {value} is outside [{low}, {high}]")
    return float(value)


def _posterior(raw: Any, where: str) -> Posterior:
    if raw is None:
        return PRIOR
    if not isinstance(raw, Mapping):
        raise InvalidRoutes(f"{where}: expected {{alpha, beta}} or {{mean, variance}}")
    if "alpha" in raw or "beta" in raw:
        return Beta(
            alpha=_number(raw.get("alpha"), f"{where}.alpha", low=1e-12),
            beta=_number(raw.get("beta"), f"{where}.beta", low=1e-12),
        )
    if "mean" in raw:
        return Gaussian(
            mean=_number(raw.get("mean"), f"{where}.mean", low=-math.inf),
            variance=_number(raw.get("variance"), f"{where}.variance", low=0.0),
        )
    raise InvalidRoutes(f"{where}: expected {{alpha, beta}} or {{mean, variance}}")


def _policy(raw: Any) -> Policy:
    raw = raw or {}
    if not isinstance(raw, Mapping):
        raise InvalidRoutes("routes.policy: expected an object")
    kind = raw.get("type", constants.FIXED)
    if kind not in constants.POLICY_TYPES:
        raise InvalidRoutes(
            f"routes.policy.type: {kind!r}, expected one of {', '.join(constants.POLICY_TYPES)}"
        )
    epsilon = _number(raw.get("epsilon", 0.1), "routes.policy.epsilon", low=0.0, high=1.0)
    sticky = raw.get("stickyHeader")
    if sticky is not None and (not isinstance(sticky, str) or not sticky):
        raise InvalidRoutes("routes.policy.stickyHeader: expected a header name or null")
    reward = None if raw.get("reward") is None else _reward(raw["reward"])
    return Policy(type=kind, epsilon=epsilon, sticky_header=sticky, reward=reward)


def _reward(raw: Any) -> Reward:
    where = "routes.policy.reward"
    if not isinstance(raw, Mapping):
        raise InvalidRoutes(f"{where}: expected an object")
    kind = raw.get("type", constants.BINARY)
    if kind not in constants.REWARD_TYPES:
        raise InvalidRoutes(
            f"{where}.type: {kind!r}, expected one of {', '.join(constants.REWARD_TYPES)}"
        )
    low, high = raw.get("minimum"), raw.get("maximum")
    bound = REWARD_BOUND
    low = None if low is None else _number(low, f"{where}.minimum", low=-bound, high=bound)
    high = None if high is None else _number(high, f"{where}.maximum", low=-bound, high=bound)
    if low is not None and high is not None and low > high:
        raise InvalidRoutes(f"{where}.minimum: {low} is above maximum {high}")
    return Reward(type=kind, minimum=low, maximum=high)


def parse(data: Any) -> Routes:
    """Validate a decoded routes document; `InvalidRoutes` names the first bad field."""
    if not isinstance(data, Mapping):
        raise InvalidRoutes("routes: expected a JSON object")
    deployment = data.get("deployment")
    if not isinstance(deployment, str) or not deployment:
        raise InvalidRoutes("routes.deployment: expected a non-empty string")
    policy = _policy(data.get("policy"))
    raw_variants = data.get("variants")
    if not isinstance(raw_variants, list) or not raw_variants:
        raise InvalidRoutes("routes.variants: expected a non-empty list")
    variants = []
    seen: set[str] = set()
    for i, raw in enumerate(raw_variants):
        where = f"routes.variants[{i}]"
        if not isinstance(raw, Mapping):
            raise InvalidRoutes(f"{where}: expected an object")
        name, url = raw.get("name"), raw.get("url")
        if not isinstance(name, str) or not name:
            raise InvalidRoutes(f"{where}.name: expected a non-empty string")
        if name in seen:
            raise InvalidRoutes(f"{where}.name: {name!r} appears twice")
        seen.add(name)
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise InvalidRoutes(f"{where}.url: expected an http(s) URL, got {url!r}")
        version = raw.get("modelVersion")
        variants.append(
            Variant(
                name=name,
                url=url.rstrip("/"),
                weight=_number(raw.get("weight", 0), f"{where}.weight", low=0.0, high=100.0),
                model_version=None if version is None else str(version),
                posterior=_posterior(raw.get("posterior"), f"{where}.posterior"),
            )
        )
    stable = data.get("stable", constants.STABLE)
    if not isinstance(stable, str) or stable not in seen:
        raise InvalidRoutes(
            f"routes.stable: {stable!r} is not one of the variants ({', '.join(sorted(seen))})"
        )
    if policy.type == constants.FIXED and sum(v.weight for v in variants) <= 0:
        raise InvalidRoutes("routes.variants[*].weight: under a fixed policy they must sum > 0")
    if policy.type == constants.THOMPSON and len({type(v.posterior) for v in variants}) != 1:
        raise InvalidRoutes(
            "routes.variants[*].posterior: all Beta {alpha, beta} or all Gaussian {mean, variance}"
        )
    return Routes(deployment=deployment, stable=stable, policy=policy, variants=tuple(variants))


def loads(text: str | bytes) -> Routes:
    """Parse the ConfigMap's JSON text; `InvalidRoutes` on bad JSON or a bad document."""
    try:
        data = json.loads(text)
    except ValueError as exc:  # UnicodeDecodeError too (binary garbage)
        raise InvalidRoutes(f"routes.json: not valid JSON ({exc})") from exc
    except RecursionError as exc:  # e.g. 10,000 nested brackets: json's C parser gives up
        raise InvalidRoutes("routes.json: nested too deeply") from exc
    return parse(data)


def expected_shares(routes: Routes) -> dict[str, float]:
    """Variant -> share of requests (summing to 1) the routers draw under `routes`.

    Under every policy the router draws each request from the `weight` split (see
    `modelpilot.router.policy`), so the shares are the normalised weights; all weights 0 is an
    even split.
    """
    names = [v.name for v in routes.variants]
    weights = [max(0.0, v.weight) for v in routes.variants]
    total = sum(weights)
    if total <= 0:
        return {n: 1 / len(names) for n in names}
    return {n: w / total for n, w in zip(names, weights, strict=True)}

"""Parse and validate the routes document (the `<deployment>-routes` ConfigMap, key `routes.json`).

The format is pinned in docs/architecture.md. Design decision: the document is validated whole into
an immutable `Routes` before it replaces the one in force, so a bad edit of the ConfigMap is logged
and ignored (the router keeps serving the last good routes) instead of breaking traffic.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from modelpilot import errors

POLICIES = ("thompson", "epsilon-greedy", "fixed")


@dataclass(frozen=True)
class Beta:
    alpha: float
    beta: float

    @property
    def mean(self) -> float:
        return self.alpha / (self.alpha + self.beta)


@dataclass(frozen=True)
class Gaussian:
    mean: float
    variance: float


@dataclass(frozen=True)
class Variant:
    name: str
    url: str
    weight: float
    model_version: str | None
    posterior: Beta | Gaussian


@dataclass(frozen=True)
class Policy:
    type: str
    epsilon: float
    sticky_header: str | None


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


def _number(value: Any, where: str, *, low: float, high: float = math.inf) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise errors.InputError(f"{where}: expected a number, got {value!r}")
    if not low <= value <= high:
        raise errors.InputError(f"{where}: {value} is outside [{low}, {high}]")
    return float(value)


def _posterior(raw: Any, where: str) -> Beta | Gaussian:
    if raw is None:
        return Beta(1.0, 1.0)
    if not isinstance(raw, dict):
        raise errors.InputError(f"{where}: expected {{alpha, beta}} or {{mean, variance}}")
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
    raise errors.InputError(f"{where}: expected {{alpha, beta}} or {{mean, variance}}")


def parse_routes(data: Any) -> Routes:
    """Validate a decoded routes document; `InputError` names the first bad field."""
    if not isinstance(data, dict):
        raise errors.InputError("routes: expected a JSON object")
    deployment = data.get("deployment")
    if not isinstance(deployment, str) or not deployment:
        raise errors.InputError("routes.deployment: expected a non-empty string")
    raw_policy = data.get("policy") or {}
    if not isinstance(raw_policy, dict):
        raise errors.InputError("routes.policy: expected an object")
    kind = raw_policy.get("type", "fixed")
    if kind not in POLICIES:
        raise errors.InputError(
            f"routes.policy.type: {kind!r}, expected one of {', '.join(POLICIES)}"
        )
    epsilon = _number(raw_policy.get("epsilon", 0.1), "routes.policy.epsilon", low=0.0, high=1.0)
    sticky = raw_policy.get("stickyHeader")
    if sticky is not None and (not isinstance(sticky, str) or not sticky):
        raise errors.InputError("routes.policy.stickyHeader: expected a header name or null")
    raw_variants = data.get("variants")
    if not isinstance(raw_variants, list) or not raw_variants:
        raise errors.InputError("routes.variants: expected a non-empty list")
    variants = []
    seen: set[str] = set()
    for i, raw in enumerate(raw_variants):
        where = f"routes.variants[{i}]"
        if not isinstance(raw, dict):
            raise errors.InputError(f"{where}: expected an object")
        name, url = raw.get("name"), raw.get("url")
        if not isinstance(name, str) or not name:
            raise errors.InputError(f"{where}.name: expected a non-empty string")
        if name in seen:
            raise errors.InputError(f"{where}.name: {name!r} appears twice")
        seen.add(name)
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise errors.InputError(f"{where}.url: expected an http(s) URL, got {url!r}")
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
    stable = data.get("stable", "stable")
    if stable not in seen:
        raise errors.InputError(
            f"routes.stable: {stable!r} is not one of the variants ({', '.join(sorted(seen))})"
        )
    if kind == "fixed" and sum(v.weight for v in variants) <= 0:
        raise errors.InputError("routes.variants[*].weight: under a fixed policy they must sum > 0")
    if kind == "thompson" and len({type(v.posterior) for v in variants}) != 1:
        raise errors.InputError(
            "routes.variants[*].posterior: all Beta {alpha, beta} or all Gaussian {mean, variance}"
        )
    return Routes(
        deployment=deployment,
        stable=stable,
        policy=Policy(type=kind, epsilon=epsilon, sticky_header=sticky),
        variants=tuple(variants),
    )


def load_routes(text: str | bytes) -> Routes:
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise errors.InputError(f"routes.json: not valid JSON ({exc})") from exc
    return parse_routes(data)

"""The routes ConfigMap (`<md>-routes`, key `routes.json`): the router's traffic split.

Single writer: this module is the only code that produces the ConfigMap. The ModelDeployment
controller calls `build_routes_configmap` with `route_variants(...)`: the stable variant alone at
weight 100, or, when a Running Experiment references the deployment, the variants, weights and
posteriors recorded in that Experiment's status. The Experiment controller calls the same two
functions after it writes its status, so both controllers always compute the same object from the
same inputs and never fight over it (server-side apply with one field manager).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, NotRequired, TypedDict

from modelpilot import errors
from modelpilot.operator.builders import meta

ROUTES_KEY = "routes.json"
POLICY_TYPES = ("thompson", "epsilon-greedy", "fixed")


class RouteVariant(TypedDict):
    """One variant as the router sees it (the URL is derived from the names)."""

    name: str
    weight: float
    modelVersion: str
    posterior: NotRequired[dict[str, float]]


def default_policy() -> dict[str, Any]:
    return {"type": "fixed", "epsilon": 0.1, "stickyHeader": None}


def route_variants(
    *, stable_version: str, experiment: Mapping[str, Any] | None
) -> tuple[list[RouteVariant], dict[str, Any]]:
    """Variants and policy for the routes: from a Running Experiment's status, else stable at 100.

    An Experiment counts only when its `status.phase` is `Running` and its status lists the
    variants with weights; the stable variant's version always comes from the ModelDeployment
    (what it actually serves), so a promotion cannot leave a stale version in the routes.
    """
    status = (experiment or {}).get("status") or {}
    listed = status.get("variants") or []
    if experiment is None or status.get("phase") != "Running" or not listed:
        return [
            {
                "name": meta.STABLE,
                "weight": 100,
                "modelVersion": stable_version,
                "posterior": {"alpha": 1.0, "beta": 1.0},
            }
        ], default_policy()
    variants: list[RouteVariant] = []
    for entry in listed:
        name = str(entry["name"])
        version = (
            stable_version
            if name == meta.STABLE
            else str((entry.get("model") or {}).get("version", ""))
        )
        variant: RouteVariant = {
            "name": name,
            "weight": entry.get("weight", 0),
            "modelVersion": version,
        }
        if entry.get("posterior"):
            variant["posterior"] = dict(entry["posterior"])
        variants.append(variant)
    policy_spec = (experiment.get("spec") or {}).get("policy") or {}
    policy = {
        "type": policy_spec.get("type", "thompson"),
        "epsilon": policy_spec.get("epsilon", 0.1),
        "stickyHeader": policy_spec.get("stickyHeader"),
    }
    return variants, policy


def build_routes_configmap(
    md: meta.Body,
    *,
    variants: Sequence[RouteVariant],
    policy: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The ConfigMap in the format of docs/architecture.md; URLs: `<md>-<variant>` Services."""
    md_name, namespace = meta.name_of(md), meta.namespace_of(md)
    chosen = dict(policy) if policy is not None else default_policy()
    if chosen.get("type") not in POLICY_TYPES:
        raise errors.InputError(f"policy.type: {chosen.get('type')!r} is not one of {POLICY_TYPES}")
    names = [v["name"] for v in variants]
    if len(set(names)) != len(names) or meta.STABLE not in names:
        raise errors.InputError(f"variants: names must be unique and include 'stable', got {names}")
    routes = {
        "deployment": md_name,
        "stable": meta.STABLE,
        "policy": chosen,
        "variants": [
            {
                "name": v["name"],
                "url": meta.service_url(
                    service=meta.model_server_name(md_name, v["name"]), namespace=namespace
                ),
                "weight": v["weight"],
                "modelVersion": v["modelVersion"],
                "posterior": v.get("posterior", {"alpha": 1.0, "beta": 1.0}),
            }
            for v in variants
        ],
    }
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": meta.metadata(
            name=meta.routes_configmap_name(md_name),
            namespace=namespace,
            labels=meta.labels(md_name, component="router"),
            owner=md,
        ),
        "data": {ROUTES_KEY: json.dumps(routes, sort_keys=False, separators=(",", ":"))},
    }


def traffic_summary(variants: Sequence[RouteVariant]) -> str:
    """`stable=80,challenger=20`: the printer column."""
    return ",".join(f"{v['name']}={_pct(v['weight'])}" for v in variants)


def _pct(weight: float) -> str:
    return str(int(weight)) if float(weight).is_integer() else f"{weight:.1f}"

"""The routes ConfigMap (`<md>-routes`, key `routes.json`): the router's traffic split.

Single writer: this module is the only code that produces the ConfigMap. The ModelDeployment
controller calls `build_routes_configmap` with `route_variants(...)`: the stable variant alone at
weight 100, or, when a Running Experiment references the deployment, the variants, weights and
posteriors recorded in that Experiment's status. The Experiment controller calls the same two
functions after it writes its status, so both controllers always compute the same object from the
same inputs and never fight over it (server-side apply with one field manager).

The document itself is the typed contract `modelpilot.api.routes`: the ConfigMap holds
`api.routes.dumps` of a document that `api.routes.parse` accepted, the very check the router makes,
so the operator cannot write routes the router would refuse.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NotRequired, TypedDict

from modelpilot.api import constants
from modelpilot.api import routes as contract
from modelpilot.operator.builders import meta

ROUTES_KEY = constants.ROUTES_KEY


class RouteVariant(TypedDict):
    """One variant as the router sees it (the URL is derived from the names)."""

    name: str
    weight: float
    modelVersion: str
    posterior: NotRequired[dict[str, float]]


def default_policy() -> dict[str, Any]:
    return {"type": constants.FIXED, "epsilon": 0.1, "stickyHeader": None}


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
    if experiment is None or status.get("phase") != constants.RUNNING or not listed:
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
        "type": policy_spec.get("type", constants.THOMPSON),
        "epsilon": policy_spec.get("epsilon", 0.1),
        "stickyHeader": policy_spec.get("stickyHeader"),
        # The declared reward, so every router refuses a reward the experiment cannot count.
        "reward": dict((experiment.get("spec") or {}).get("reward") or {"type": constants.BINARY}),
    }
    return variants, policy


def build_routes_configmap(
    md: meta.Body,
    *,
    variants: Sequence[RouteVariant],
    policy: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The ConfigMap in the format of docs/architecture.md; URLs: `<md>-<variant>` Services.

    Raises `api.routes.InvalidRoutes` (an `InputError`) naming the field when the inputs do not
    make a valid routes document (no stable variant, a name twice, an unknown policy).
    """
    md_name, namespace = meta.name_of(md), meta.namespace_of(md)
    chosen = dict(policy) if policy is not None else default_policy()
    document = {
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
                "posterior": v.get("posterior"),
            }
            for v in variants
        ],
    }
    text = contract.dumps(contract.parse(document))
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": meta.metadata(
            name=meta.routes_configmap_name(md_name),
            namespace=namespace,
            labels=meta.labels(md_name, component="router"),
            owner=md,
        ),
        "data": {ROUTES_KEY: text},
    }


def traffic_summary(variants: Sequence[RouteVariant]) -> str:
    """`stable=80,challenger=20`: the printer column."""
    return ",".join(f"{v['name']}={_pct(v['weight'])}" for v in variants)


def _pct(weight: float) -> str:
    return str(int(weight)) if float(weight).is_integer() else f"{weight:.1f}"

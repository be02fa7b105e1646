"""Every object one ModelDeployment owns, given the model it resolved to and the routes in force.

Design decision: the controller never patches pieces; it builds this complete list and applies
all of it on every reconcile, then prunes what it owns but no longer wants (e.g. the drift
CronJob after `spec.drift` is removed). Converging the whole set is what reverts hand edits.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from modelpilot.operator import settings as settings_mod
from modelpilot.operator.builders import drift, meta, routes, workloads


def build_desired(
    md: meta.Body,
    *,
    model: Mapping[str, Any],
    variants: Sequence[routes.RouteVariant],
    policy: Mapping[str, Any] | None,
    settings: settings_mod.OperatorSettings,
) -> list[dict[str, Any]]:
    """The stable model server, the router, the routes and (with `spec.drift`) the drift job."""
    spec = md.get("spec", {})
    serving = spec.get("serving") or {}
    objects: list[dict[str, Any]] = [
        *workloads.build_router_rbac(md),
        routes.build_routes_configmap(md, variants=variants, policy=policy),
        workloads.build_model_server_deployment(
            md,
            variant=meta.STABLE,
            model=model,
            replicas=int(serving.get("replicas", 1)),
            settings=settings,
        ),
        workloads.build_model_server_service(md, variant=meta.STABLE),
        workloads.build_router_deployment(md, settings=settings),
        workloads.build_router_service(md),
    ]
    if spec.get("drift") is not None:
        objects.extend(drift.build_drift_rbac(md))
        objects.append(drift.build_drift_cronjob(md, settings=settings))
    return objects


def key(obj: Mapping[str, Any]) -> tuple[str, str]:
    """(kind, name): what identifies an owned object inside one namespace."""
    return str(obj["kind"]), str(obj["metadata"]["name"])

"""Names, labels and owner references shared by the builders (contract: docs/architecture.md).

Design decision: object names derive from the ModelDeployment name with fixed suffixes
(`<md>-<variant>`, `<md>-router`, `<md>-routes`, `<md>-drift`; the router's Service is `<md>`
itself so the endpoint reads `http://<md>.<ns>.svc`). The CRD caps names at 40 characters so every
derived name fits Kubernetes' 63-character label limit.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from modelpilot.api import constants

MANAGED_BY = "modelpilot"
FIELD_MANAGER = "modelpilot-operator"
STABLE = constants.STABLE

LABEL_DEPLOYMENT = constants.LABEL_DEPLOYMENT
LABEL_VARIANT = constants.LABEL_VARIANT
LABEL_EXPERIMENT = constants.LABEL_EXPERIMENT

COMPONENT_NAMES = {
    constants.COMPONENT_MODEL_SERVER: "modelpilot-model-server",
    constants.COMPONENT_ROUTER: "modelpilot-router",
    constants.COMPONENT_DRIFT: "modelpilot-drift",
}

Body = Mapping[str, Any]
Object = dict[str, Any]


def name_of(body: Body) -> str:
    name: str = body["metadata"]["name"]
    return name


def namespace_of(body: Body) -> str:
    namespace: str = body["metadata"]["namespace"]
    return namespace


def model_server_name(md_name: str, variant: str) -> str:
    return f"{md_name}-{variant}"


def router_name(md_name: str) -> str:
    return f"{md_name}-router"


def router_service_name(md_name: str) -> str:
    return md_name


def routes_configmap_name(md_name: str) -> str:
    return f"{md_name}-routes"


def drift_name(md_name: str) -> str:
    return f"{md_name}-drift"


def service_url(*, service: str, namespace: str, port: int = constants.SERVICE_PORT) -> str:
    return f"http://{service}.{namespace}.svc:{port}"


def selector_labels(md_name: str, *, component: str, variant: str | None = None) -> dict[str, str]:
    """The immutable subset used in Deployment selectors and Service selectors."""
    labels = {
        constants.LABEL_NAME: COMPONENT_NAMES[component],
        constants.LABEL_INSTANCE: md_name,
        LABEL_DEPLOYMENT: md_name,
    }
    if variant is not None:
        labels[LABEL_VARIANT] = variant
    return labels


def labels(
    md_name: str,
    *,
    component: str,
    variant: str | None = None,
    experiment: str | None = None,
) -> dict[str, str]:
    out = {
        **selector_labels(md_name, component=component, variant=variant),
        constants.LABEL_COMPONENT: component,
        constants.LABEL_MANAGED_BY: MANAGED_BY,
        constants.LABEL_PART_OF: constants.PART_OF,
    }
    if experiment is not None:
        out[LABEL_EXPERIMENT] = experiment
    return out


def owner_reference(owner: Body) -> dict[str, Any]:
    """A controller owner reference, so deleting the owner garbage-collects the object."""
    return {
        "apiVersion": owner["apiVersion"],
        "kind": owner["kind"],
        "name": owner["metadata"]["name"],
        "uid": owner["metadata"]["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def metadata(
    *,
    name: str,
    namespace: str,
    labels: dict[str, str],
    owner: Body,
    annotations: dict[str, str] | None = None,
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": name,
        "namespace": namespace,
        "labels": labels,
        "ownerReferences": [owner_reference(owner)],
    }
    if annotations:
        out["annotations"] = annotations
    return out


def tracking_uri(md: Body, default: str) -> str:
    registry = md.get("spec", {}).get("registry") or {}
    uri: str = registry.get("trackingUri") or default
    return uri


RESTRICTED_CONTAINER_SECURITY = {
    "allowPrivilegeEscalation": False,
    "readOnlyRootFilesystem": True,
    "runAsNonRoot": True,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}
"""The Pod Security Standards' `restricted` profile for every container the operator creates."""

POD_SECURITY = {"runAsNonRoot": True, "runAsUser": 10001, "fsGroup": 10001}

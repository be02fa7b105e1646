"""Server-side apply, reads, lists, pruning and status patches against the Kubernetes API.

    KubeError            any failed call; `.status` carries the HTTP status
    ├── NotFoundError         404
    ├── ConflictError         409 (stale resourceVersion, or a field owned by another manager)
    └── ForbiddenError        403 (the operator's RBAC lacks a rule: a bug in `modelpilot.api.rbac`)

Design decision: every write of a desired object is a server-side apply of the *whole* object with
one field manager (`modelpilot-operator`) and `force=true`, so re-applying is idempotent (no new
resourceVersion when nothing changed) and a hand edit of a field we own is taken back. Paths come
from a small table of the kinds we manage, not API discovery: no start-up cost, and an unknown kind
is a programming error caught by the unit tests.
"""

from __future__ import annotations

import collections
import contextlib
import datetime as dt
import json
import socket
import threading
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import quote

from modelpilot.api import conditions
from modelpilot.kube import client as client_mod

FIELD_MANAGER = "modelpilot-operator"
TIMEOUT_SECONDS = 15.0

REQUESTS: collections.Counter[str] = collections.Counter()
"""API requests made through `request`, by HTTP method (for the operator's metrics and tests)."""
_COUNT_LOCK = threading.Lock()

# kind -> (plural, namespaced)
KINDS: dict[str, tuple[str, bool]] = {
    "Deployment": ("deployments", True),
    "Service": ("services", True),
    "ConfigMap": ("configmaps", True),
    "ServiceAccount": ("serviceaccounts", True),
    "CronJob": ("cronjobs", True),
    "Role": ("roles", True),
    "RoleBinding": ("rolebindings", True),
    "Pod": ("pods", True),
    "Event": ("events", True),
    "ModelDeployment": ("modeldeployments", True),
    "Experiment": ("experiments", True),
    "Namespace": ("namespaces", False),
    "CustomResourceDefinition": ("customresourcedefinitions", False),
    "ClusterRole": ("clusterroles", False),
    "ClusterRoleBinding": ("clusterrolebindings", False),
}

# The kinds a ModelDeployment may own, with their apiVersion (used when pruning).
OWNED_KINDS: dict[str, str] = {
    "Deployment": "apps/v1",
    "Service": "v1",
    "ConfigMap": "v1",
    "ServiceAccount": "v1",
    "CronJob": "batch/v1",
    "Role": "rbac.authorization.k8s.io/v1",
    "RoleBinding": "rbac.authorization.k8s.io/v1",
}


class KubeError(Exception):
    """A Kubernetes API call failed; the message is the API server's."""

    def __init__(self, message: str, *, status: int) -> None:
        super().__init__(message)
        self.status = status


class NotFoundError(KubeError):
    pass


class ConflictError(KubeError):
    pass


class ForbiddenError(KubeError):
    pass


def path(api_version: str, kind: str, *, namespace: str | None, name: str | None = None) -> str:
    """REST path of a collection (name None) or of one object."""
    try:
        plural, namespaced = KINDS[kind]
    except KeyError as exc:
        raise KeyError(f"kind {kind!r} is not managed by modelpilot.kube.apply") from exc
    base = f"/api/{api_version}" if "/" not in api_version else f"/apis/{api_version}"
    if namespaced:
        if not namespace:
            raise ValueError(f"{kind} is namespaced: a namespace is required")
        base += f"/namespaces/{quote(namespace)}"
    base += f"/{plural}"
    return base if name is None else f"{base}/{quote(name)}"


def request(
    method: str,
    resource_path: str,
    *,
    query: Mapping[str, str] | None = None,
    body: object | None = None,
    content_type: str = "application/json",
) -> dict[str, Any]:
    """One API call; JSON in, JSON out; errors raised as `KubeError` subclasses."""
    api = client_mod.api_client()
    headers = {"Accept": "application/json"}
    if body is not None:
        headers["Content-Type"] = content_type
        if "yaml" in content_type and not isinstance(body, bytes | str):
            # The client would send json.dumps(body): ASCII with \uXXXX escapes, and a character
            # outside the BMP (an emoji in a model name) as a surrogate pair, which is valid JSON
            # but which the API server's YAML decoder refuses ("found unknown escape character").
            # UTF-8 JSON is valid YAML 1.2 and carries every character as itself.
            body = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    with _COUNT_LOCK:
        REQUESTS[method] += 1
    method_, url, headers_, body_ = api.param_serialize(
        method=method,
        resource_path=resource_path,
        query_params=list((query or {}).items()),
        header_params=headers,
        body=body,  # serialized by the client (JSON, which is also valid YAML for apply)
        auth_settings=["BearerToken"],
    )[:4]
    response = api.call_api(
        method_, url, header_params=headers_, body=body_, _request_timeout=TIMEOUT_SECONDS
    )
    data = response.read()  # type: ignore[no-untyped-call]
    text = data.decode("utf-8", errors="replace") if data else ""
    if response.status >= 400:
        message = text
        with contextlib.suppress(ValueError, AttributeError):
            message = json.loads(text).get("message", text)
        error = {404: NotFoundError, 409: ConflictError, 403: ForbiddenError}.get(
            response.status, KubeError
        )
        raise error(f"{method} {resource_path}: {message}", status=response.status)
    if not text:
        return {}
    parsed: dict[str, Any] = json.loads(text)
    return parsed


def apply(obj: Mapping[str, Any], *, field_manager: str = FIELD_MANAGER) -> dict[str, Any]:
    """Server-side apply of a complete object; returns the object as stored (with status)."""
    metadata = obj["metadata"]
    return request(
        "PATCH",
        path(
            obj["apiVersion"],
            obj["kind"],
            namespace=metadata.get("namespace"),
            name=metadata["name"],
        ),
        query={"fieldManager": field_manager, "force": "true"},
        body=obj,
        content_type="application/apply-patch+yaml",
    )


def get(api_version: str, kind: str, *, namespace: str | None, name: str) -> dict[str, Any] | None:
    try:
        return request("GET", path(api_version, kind, namespace=namespace, name=name))
    except NotFoundError:
        return None


def list_objects(
    api_version: str, kind: str, *, namespace: str | None, selector: str | None = None
) -> list[dict[str, Any]]:
    query = {"labelSelector": selector} if selector else None
    items: list[dict[str, Any]] = request(
        "GET", path(api_version, kind, namespace=namespace), query=query
    ).get("items", [])
    return items


def delete(api_version: str, kind: str, *, namespace: str | None, name: str) -> bool:
    """Delete in the background (dependents by GC); False when it was already gone."""
    try:
        request(
            "DELETE",
            path(api_version, kind, namespace=namespace, name=name),
            body={"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Background"},
        )
    except NotFoundError:
        return False
    return True


def patch_status(
    api_version: str, kind: str, *, namespace: str, name: str, status: Mapping[str, Any]
) -> dict[str, Any]:
    """JSON merge patch of the status subresource (lists such as conditions are replaced whole)."""
    return request(
        "PATCH",
        path(api_version, kind, namespace=namespace, name=name) + "/status",
        body={"status": status},
        content_type="application/merge-patch+json",
    )


def prune(
    *,
    namespace: str,
    selector: str,
    keep: Iterable[tuple[str, str]],
    owner_uid: str,
    kinds: Mapping[str, str] = OWNED_KINDS,
) -> list[tuple[str, str]]:
    """Delete what matches `selector`, is controlled by `owner_uid`, and is not in `keep`.

    Only objects whose controller owner reference is `owner_uid` are touched, so an object another
    owner created with the same labels (an Experiment's challenger) is never pruned here.
    """
    wanted = set(keep)
    deleted = []
    for kind, api_version in kinds.items():
        for item in list_objects(api_version, kind, namespace=namespace, selector=selector):
            name = item["metadata"]["name"]
            owners = item["metadata"].get("ownerReferences") or []
            controlled = any(o.get("uid") == owner_uid and o.get("controller") for o in owners)
            if (
                controlled
                and (kind, name) not in wanted
                and delete(api_version, kind, namespace=namespace, name=name)
            ):
                deleted.append((kind, name))
    return deleted


EVENT_SOURCE = FIELD_MANAGER
"""The `source.component` / `reportingComponent` of the Events we post (`kubectl describe`)."""


def post_event(
    involved: Mapping[str, Any], *, type_: str, reason: str, message: str
) -> dict[str, Any]:
    """Create a core/v1 Event about `involved`, from the operator (not from a framework)."""
    metadata = involved["metadata"]
    now = _rfc3339_now()
    return request(
        "POST",
        path("v1", "Event", namespace=metadata["namespace"]),
        body={
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {
                "generateName": f"{metadata['name']}.",
                "namespace": metadata["namespace"],
            },
            "involvedObject": {
                "apiVersion": involved.get("apiVersion"),
                "kind": involved.get("kind"),
                "name": metadata["name"],
                "namespace": metadata["namespace"],
                "uid": metadata.get("uid"),
            },
            "type": type_,
            "reason": reason,
            "message": message,
            "source": {"component": EVENT_SOURCE},
            "reportingComponent": EVENT_SOURCE,
            "reportingInstance": _HOSTNAME,
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
        },
    )


_HOSTNAME = socket.gethostname()


def _rfc3339_now() -> str:
    return conditions.timestamp(dt.datetime.now(dt.UTC))

"""The operator's least-privilege RBAC rules, as data.

Rendered to `manifests/rbac/` (a ClusterRole for cluster-wide mode, a Role for single-namespace
mode) and, by the chart engineer, into the Helm chart, each checked equal to these rules by a test.
The control-plane tests run the operator with a token bound to exactly these rules.

Design decision: the operator creates Roles for the workloads it deploys (the router reads its
routes ConfigMap; the drift job reads pods and writes the ModelDeployment status). Kubernetes
forbids granting permissions one does not hold (RBAC escalation prevention), so instead of the
broad `escalate`/`bind` verbs the operator holds each of those narrow permissions itself.
"""

from __future__ import annotations

from typing import Any

from modelpilot.api import common, peering

Rule = dict[str, list[str]]

_READ = ["get", "list", "watch"]
_MANAGE = ["get", "list", "watch", "create", "update", "patch", "delete"]


def operator_rules(*, cluster_wide: bool) -> list[Rule]:
    """Rules the operator needs; `cluster_wide` adds the cluster-scoped kopf peering."""
    rules: list[Rule] = [
        # Our resources: watch them, patch status, annotate (kopf's progress) and own children
        # (blockOwnerDeletion needs update on <resource>/finalizers).
        {
            "apiGroups": [common.GROUP],
            "resources": ["modeldeployments", "experiments"],
            "verbs": ["get", "list", "watch", "patch", "update"],
        },
        {
            "apiGroups": [common.GROUP],
            "resources": [
                "modeldeployments/status",
                "experiments/status",
                "modeldeployments/finalizers",
                "experiments/finalizers",
            ],
            "verbs": ["get", "patch", "update"],
        },
        # What a ModelDeployment turns into.
        {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": _MANAGE},
        {
            "apiGroups": [""],
            "resources": ["services", "configmaps", "serviceaccounts"],
            "verbs": _MANAGE,
        },
        {"apiGroups": ["batch"], "resources": ["cronjobs"], "verbs": _MANAGE},
        {
            "apiGroups": ["rbac.authorization.k8s.io"],
            "resources": ["roles", "rolebindings"],
            "verbs": _MANAGE,
        },
        # Held only so that the drift job's Role may grant it (escalation prevention).
        {"apiGroups": [""], "resources": ["pods"], "verbs": _READ},
        # Kubernetes Events on each change (kopf posts core/v1 events).
        {"apiGroups": [""], "resources": ["events"], "verbs": ["create", "patch"]},
        {"apiGroups": ["events.k8s.io"], "resources": ["events"], "verbs": ["create", "patch"]},
        # kopf peering (more than one replica).
        {
            "apiGroups": [peering.PEERING_GROUP],
            "resources": ["kopfpeerings"],
            "verbs": ["get", "list", "watch", "patch"],
        },
    ]
    if cluster_wide:
        rules.append(
            {
                "apiGroups": [peering.PEERING_GROUP],
                "resources": ["clusterkopfpeerings"],
                "verbs": ["get", "list", "watch", "patch"],
            }
        )
    return rules


OPERATOR_NAME = "modelpilot-operator"


def _labels() -> dict[str, str]:
    return {
        "app.kubernetes.io/name": OPERATOR_NAME,
        "app.kubernetes.io/part-of": "modelpilot",
        "app.kubernetes.io/component": "operator",
    }


def build_cluster_role(name: str = OPERATOR_NAME) -> dict[str, Any]:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": {"name": name, "labels": _labels()},
        "rules": operator_rules(cluster_wide=True),
    }


def build_role(name: str = OPERATOR_NAME, *, namespace: str | None = None) -> dict[str, Any]:
    """The single-namespace variant; without `namespace` it lands where `kubectl -n` says."""
    metadata: dict[str, Any] = {"name": name, "labels": _labels()}
    if namespace is not None:
        metadata["namespace"] = namespace
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": metadata,
        "rules": operator_rules(cluster_wide=False),
    }

"""The two resources the demo applies with kubectl: a ModelDeployment and an Experiment.

Pure builders of plain dicts (written to `.demo/*.yaml` and applied with `kubectl apply -f`, as a
user would). The one design decision: the demo's settings make the split's movement visible and
the decision come within a minute on a laptop, inside what the CRD allows and what a real user
could write. The challenger is so much better (91% against 72%) that Thompson sampling alone would
jump from 50/50 to the ceiling at the first update; `maxStep: 10` moves it 10 points per 2 s
update (50 -> 60 -> 70 -> 80 -> 90). The decision needs 150 rewards per variant, which the
champion cannot have by the third update: at the demo's 40 requests/s it gets 80 requests per
update at most, 50%, 60% and 70% of them even if the first noisy updates favour it, and its
rewards arrive later still. So at least three steps are seen before the promotion; on the usual
path (the champion's share falling to the 10% floor) the decision comes about 20 s in, longer on a
loaded machine, where fewer requests go out. The drift CronJob is suspended because the demo runs
the drift job itself, once, when it has sent drifted traffic.
"""

from __future__ import annotations

from typing import Any

API_VERSION = "modelpilot.io/v1alpha1"
OPERATOR_NAMESPACE = "modelpilot-system"
OPERATOR_ACCOUNT = "modelpilot-operator"
OPERATOR_CLUSTER_ROLE = "modelpilot-operator"  # manifests/rbac/operator-clusterrole.yaml


def build_operator_identity() -> list[dict[str, Any]]:
    """The operator's namespace, ServiceAccount and the binding to its ClusterRole.

    The demo runs the operator with a token of this account, not as the cluster admin, so what it
    shows is also proof that the shipped RBAC is enough.
    """
    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": OPERATOR_NAMESPACE}},
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": OPERATOR_ACCOUNT, "namespace": OPERATOR_NAMESPACE},
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": OPERATOR_ACCOUNT},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": OPERATOR_CLUSTER_ROLE,
            },
            "subjects": [
                {
                    "kind": "ServiceAccount",
                    "name": OPERATOR_ACCOUNT,
                    "namespace": OPERATOR_NAMESPACE,
                }
            ],
        },
    ]


def build_model_deployment(
    *, name: str, namespace: str, model: str, version: str, tracking_uri: str
) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": "ModelDeployment",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "model": {"name": model, "version": version},
            "registry": {"trackingUri": tracking_uri},
            "serving": {"replicas": 1},
            "router": {"replicas": 1},
            "drift": {
                "schedule": "*/30 * * * *",
                "methods": ["psi", "ks"],
                "psiThreshold": 0.2,
                "ksPValue": 0.01,
                "suspend": True,
            },
        },
    }


def build_experiment(
    *,
    name: str,
    namespace: str,
    deployment: str,
    model: str,
    challenger_version: str,
    min_samples: int = 150,
    update_interval: str = "2s",
    max_step: int = 10,
) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": "Experiment",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "deploymentRef": deployment,
            "variants": [
                {"name": "challenger", "model": {"name": model, "version": challenger_version}}
            ],
            "policy": {
                "type": "thompson",
                "minWeight": 10,
                "maxWeight": 90,
                "maxStep": max_step,
                "updateInterval": update_interval,
            },
            "reward": {"type": "binary"},
            "stopping": {
                "minSamplesPerVariant": min_samples,
                "probabilityToBeBest": 0.95,
                "maxDuration": "10m",
            },
            # Local processes on a shared 2-core machine: generous latency, strict errors.
            "guardrails": {"maxErrorRate": 0.05, "maxLatencyP99Ms": 2000},
            "onSuccess": "promote",
        },
    }

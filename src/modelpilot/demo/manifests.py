"""The two resources the demo applies with kubectl: a ModelDeployment and an Experiment.

Pure builders of plain dicts (written to `.demo/*.yaml` and applied with `kubectl apply -f`, as a
user would). The one design decision: the demo's settings are tuned so the experiment decides in
about a minute on a laptop (update every 5 s, 300 samples per variant, probability to be best 0.95)
while staying inside what the CRD allows and what a real user could write; the drift CronJob is
suspended because the demo runs the drift job itself, once, at the moment it has drifted traffic.
"""

from __future__ import annotations

from typing import Any

API_VERSION = "modelpilot.io/v1alpha1"


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
    min_samples: int = 300,
    update_interval: str = "5s",
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
                "minWeight": 5,
                "maxWeight": 95,
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

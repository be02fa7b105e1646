"""The drift CronJob and the drift job's ServiceAccount, Role and RoleBinding.

Design decision: the CronJob passes only the deployment's name and namespace
(`modelpilot drift run --deployment NAME --namespace NS`); the job reads thresholds and methods from
the ModelDeployment itself, so changing `spec.drift.psiThreshold` needs no new CronJob revision, and
the job's Role is limited to that one ModelDeployment (and pods, to reach the model servers).
"""

from __future__ import annotations

from typing import Any

from modelpilot.api import common
from modelpilot.operator import settings as settings_mod
from modelpilot.operator.builders import meta, workloads


def build_drift_cronjob(
    md: meta.Body, *, settings: settings_mod.OperatorSettings
) -> dict[str, Any]:
    md_name, namespace = meta.name_of(md), meta.namespace_of(md)
    drift = md["spec"]["drift"]
    labels = meta.labels(md_name, component="drift")
    container = {
        "name": "drift",
        "image": settings.drift_image,
        "imagePullPolicy": settings.image_pull_policy,
        "command": [
            "modelpilot",
            "drift",
            "run",
            "--deployment",
            md_name,
            "--namespace",
            namespace,
        ],
        "env": [
            {
                "name": "MLFLOW_TRACKING_URI",
                "value": meta.tracking_uri(md, settings.mlflow_tracking_uri),
            },
            *(
                [{"name": "MODELPILOT_DRIFT_PUSHGATEWAY", "value": settings.pushgateway_url}]
                if settings.pushgateway_url
                else []
            ),
        ],
        "securityContext": meta.RESTRICTED_CONTAINER_SECURITY,
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
    }
    return {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": meta.metadata(
            name=meta.drift_name(md_name), namespace=namespace, labels=labels, owner=md
        ),
        "spec": {
            "schedule": drift.get("schedule", "*/30 * * * *"),
            "suspend": bool(drift.get("suspend", False)),
            # One run at a time: a slow run must not overlap the next (they would race on status).
            "concurrencyPolicy": "Forbid",
            "successfulJobsHistoryLimit": 1,
            "failedJobsHistoryLimit": 3,
            "startingDeadlineSeconds": 300,
            "jobTemplate": {
                "metadata": {"labels": labels},
                "spec": {
                    "backoffLimit": 1,
                    "ttlSecondsAfterFinished": 3600,
                    "template": {
                        "metadata": {"labels": labels},
                        "spec": {
                            "restartPolicy": "Never",
                            "serviceAccountName": meta.drift_name(md_name),
                            "securityContext": meta.POD_SECURITY,
                            "containers": [container],
                            "volumes": [workloads.tmp_volume("drift")],
                        },
                    },
                },
            },
        },
    }


def build_drift_rbac(md: meta.Body) -> list[dict[str, Any]]:
    """The drift job reads pods (to reach the servers), patches its deployment, posts Events."""
    md_name, namespace = meta.name_of(md), meta.namespace_of(md)
    rules = [
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]},
        # The job reports each run as an Event on the ModelDeployment.
        {"apiGroups": [""], "resources": ["events"], "verbs": ["create", "patch"]},
        {
            "apiGroups": [common.GROUP],
            "resources": ["modeldeployments"],
            "resourceNames": [md_name],
            "verbs": ["get"],
        },
        {
            "apiGroups": [common.GROUP],
            "resources": ["modeldeployments/status"],
            "resourceNames": [md_name],
            "verbs": ["get", "patch"],
        },
    ]
    return workloads.build_workload_rbac(
        md, name=meta.drift_name(md_name), namespace=namespace, component="drift", rules=rules
    )

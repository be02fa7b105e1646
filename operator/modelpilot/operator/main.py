"""Start the operator: settings -> kopf registry and kopf settings -> `kopf.run`.

Handler modules expose `register(registry, *, settings, metrics)`; this module calls
`modelpilot.operator.handlers.modeldeployment.register` and, when it exists,
`modelpilot.operator.handlers.experiment.register`. `modelpilot operator run` calls `run()`; tests
pass `build_registry()` and `build_kopf_settings()` to `kopf.testing.KopfRunner`.

Design decision: kopf keeps its bookkeeping in annotations under `operator.modelpilot.io/`, not in
`status.kopf`, because our CRDs have structural status schemas that would prune unknown fields;
the status therefore only ever holds what the CRD documents.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import os
import secrets
from collections.abc import Iterable
from typing import Any

import kopf
import prometheus_client

from modelpilot.operator import metrics as metrics_mod
from modelpilot.operator import settings as settings_mod
from modelpilot.operator.handlers import modeldeployment

KOPF_PREFIX = "operator.modelpilot.io"
EVENT_SOURCE = "modelpilot-operator"
EXPERIMENT_HANDLERS = "modelpilot.operator.handlers.experiment"

# The operator must notice an unreachable registry in seconds, not minutes: MLflow's defaults are a
# 120 s timeout and 7 retries with backoff. kopf's own retry (with backoff) replaces MLflow's.
MLFLOW_ENV = {
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "5",
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "0",
}


class SpecDiffBaseStorage(kopf.AnnotationsDiffBaseStorage):
    """kopf's last-handled-configuration holding `spec` only, never the user's annotations.

    kopf's default essence copies labels and annotations into its own annotation; a user's large
    annotation (150 KB is legal) then makes kopf's patches exceed the API server's 256 KiB limit
    on all annotations ("Too long") and the object can no longer be handled. Our update handlers
    watch `spec` only, so nothing else is needed in the diff base.
    """

    def build(
        self,
        *,
        body: kopf.Body,
        extra_fields: Iterable[kopf.FieldSpec] | None = None,
    ) -> kopf.BodyEssence:
        essence = super().build(body=body, extra_fields=extra_fields)
        essence.pop("metadata", None)
        return essence


def tune_mlflow_client() -> None:
    for key, value in MLFLOW_ENV.items():
        os.environ.setdefault(key, value)


def build_kopf_settings(settings: settings_mod.OperatorSettings) -> kopf.OperatorSettings:
    kopf_settings = kopf.OperatorSettings()
    kopf_settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=KOPF_PREFIX)
    kopf_settings.persistence.diffbase_storage = SpecDiffBaseStorage(
        prefix=KOPF_PREFIX, key="last-handled-configuration"
    )
    kopf_settings.persistence.finalizer = f"{KOPF_PREFIX}/finalizer"
    # Events only for what we post ourselves and for warnings, not for every log line.
    kopf_settings.posting.level = logging.WARNING
    # `kubectl describe` shows the Event's source: the operator, not the framework ("kopf").
    kopf_settings.posting.reporting_component = EVENT_SOURCE
    # Resources are known at start-up; watching CRDs would need cluster-wide CRD read rights.
    kopf_settings.scanning.disabled = True
    kopf_settings.execution.max_workers = settings.workers
    kopf_settings.peering.name = settings.peering_name or "modelpilot"
    kopf_settings.peering.mandatory = settings.peering_name is not None
    kopf_settings.peering.standalone = settings.peering_name is None
    kopf_settings.peering.lifetime = settings.peering_lifetime_seconds
    if settings.peering_name is not None:
        # Equal priorities make kopf pause every replica; a random draw elects one active replica.
        kopf_settings.peering.priority = (
            settings.peering_priority
            if settings.peering_priority is not None
            else secrets.randbelow(2**31 - 1) + 1
        )
    return kopf_settings


def build_registry(
    settings: settings_mod.OperatorSettings, *, metrics: metrics_mod.Metrics | None = None
) -> kopf.OperatorRegistry:
    """A registry with every handler module's handlers (the Experiment ones if present)."""
    tune_mlflow_client()
    metrics = metrics or metrics_mod.make_metrics()
    registry = kopf.OperatorRegistry()
    # A registry made by hand has no login handlers (only kopf's default one gets them): without
    # one, `kopf.run` finds no credentials in any kubeconfig ("Ran out of valid credentials").
    _login(registry)
    modeldeployment.register(registry, settings=settings, metrics=metrics)
    if importlib.util.find_spec(EXPERIMENT_HANDLERS) is not None:
        experiment: Any = importlib.import_module(EXPERIMENT_HANDLERS)
        experiment.register(registry, settings=settings, metrics=metrics)
    if settings.metrics_port:
        _serve_metrics(registry, port=settings.metrics_port, metrics=metrics)
    return registry


def _login(registry: kopf.OperatorRegistry) -> None:
    @kopf.on.login(registry=registry)
    def operator_login(**kwargs: Any) -> kopf.ConnectionInfo | None:
        # The ServiceAccount in a pod, else $KUBECONFIG as it is now. Not kopf.login_via_client:
        # the kubernetes library reads KUBECONFIG once, when `kubernetes.config` is first imported,
        # which is too early for a process (the tests) that chooses the identity later.
        info: kopf.ConnectionInfo | None = kopf.login_with_service_account(
            **kwargs
        ) or kopf.login_with_kubeconfig(**kwargs)
        return info


def _serve_metrics(
    registry: kopf.OperatorRegistry, *, port: int, metrics: metrics_mod.Metrics
) -> None:
    @kopf.on.startup(registry=registry)
    def operator_metrics_startup(memo: kopf.Memo, **_: Any) -> None:
        server, _thread = prometheus_client.start_http_server(port, registry=metrics.registry)
        memo["metrics_server"] = server

    @kopf.on.cleanup(registry=registry)
    def operator_metrics_cleanup(memo: kopf.Memo, **_: Any) -> None:
        server = memo.get("metrics_server")
        if server is not None:
            server.shutdown()


def run(settings: settings_mod.OperatorSettings) -> None:
    """Run the operator in the foreground until SIGINT/SIGTERM."""
    kopf.configure(verbose=False)
    kopf.run(
        registry=build_registry(settings),
        settings=build_kopf_settings(settings),
        clusterwide=settings.cluster_wide,
        namespaces=settings.namespaces,
        standalone=settings.peering_name is None,
        peering_name=settings.peering_name,
        liveness_endpoint=(
            f"http://0.0.0.0:{settings.health_port}/healthz" if settings.health_port else None
        ),
    )

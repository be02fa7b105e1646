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

import copy
import importlib
import importlib.util
import logging
import os
import secrets
from collections.abc import Iterable
from typing import Any, cast

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


_NOT_ESSENCE = frozenset({"apiVersion", "kind", "metadata", "status"})


class SpecDiffBaseStorage(kopf.AnnotationsDiffBaseStorage):
    """kopf's last-handled-configuration holding `spec` only, never the user's annotations.

    kopf's default essence copies labels and annotations into its own annotation; a user's large
    annotation (150 KB is legal) then makes kopf's patches exceed the API server's 256 KiB limit
    on all annotations ("Too long") and the object can no longer be handled. Our update handlers
    watch `spec` only, so nothing else is needed in the diff base.

    kopf builds the essence on every watch event by deep-copying the whole body (managedFields and
    a status with up to 100 history entries included) and then dropping most of it; here only the
    top-level fields that stay (the spec) are copied, which was a tenth of the event loop's time
    with 1,000 ModelDeployments applied at once.
    """

    def build(
        self,
        *,
        body: kopf.Body,
        extra_fields: Iterable[kopf.FieldSpec] | None = None,
    ) -> kopf.BodyEssence:
        extra = [
            tuple(field.split(".")) if isinstance(field, str) else tuple(field or ())
            for field in extra_fields or ()
        ]
        if any(not path or path[0] in _NOT_ESSENCE for path in extra):
            # A handler follows a field outside the kept stanzas: kopf's own (slower) way.
            essence = super().build(body=body, extra_fields=extra_fields)
            essence.pop("metadata", None)
            return essence
        kept = {k: copy.deepcopy(v) for k, v in body.items() if k not in _NOT_ESSENCE}
        return cast(kopf.BodyEssence, kept)


class _QuietEventSuccess(logging.Filter):
    """Drops kopf's "Handler '...event' succeeded." lines: one per watch event, saying nothing.

    At 1,000 ModelDeployments applied at once that was ~20 lines per ModelDeployment (a tenth of
    the event loop's time); failures, and the create/update handlers' lines, are still logged.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.msg if isinstance(record.msg, str) else ""
        return not (
            record.levelno == logging.INFO
            and message.startswith("Handler '")
            and message.endswith("_event' succeeded.")
        )


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
    quiet = _QuietEventSuccess()
    for handler in logging.getLogger().handlers:
        handler.addFilter(quiet)
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

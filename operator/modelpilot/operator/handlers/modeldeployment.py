"""The ModelDeployment controller: thin kopf handlers around resolve -> build -> apply -> status.

    create / update (spec) / resume / resync timer
      -> registry.resolve (alias -> version)    RegistryUnavailable: Degraded, retry with backoff
                                                ModelNotFound: Degraded, nothing built
      -> builders.desired.build_desired (pure)  + the routes of a Running Experiment, if any
      -> kube.apply (server-side apply)         + prune what is owned but no longer wanted
      -> status: conditions, model, history, endpoint, traffic; an Event per change
    managed Deployment event -> Ready/Progressing from the Deployments (no MLflow call)

Design decision: the routes ConfigMap has one writer function (`builders.routes`): this controller
builds it from its spec plus the variants and weights in the status of a Running Experiment that
references the deployment; the Experiment controller calls the same builder with the same inputs
after updating its status, so the two controllers never fight. The timer re-resolves aliases and
re-applies everything, which both follows a moved alias (recorded in `status.history`) and reverts
hand edits of the objects we own.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
from collections.abc import Mapping
from typing import Any, cast

import kopf

from modelpilot import errors
from modelpilot.api import common
from modelpilot.kube import apply
from modelpilot.operator import conditions, mdstatus
from modelpilot.operator import metrics as metrics_mod
from modelpilot.operator import settings as settings_mod
from modelpilot.operator.builders import desired, meta, routes
from modelpilot.registry import client, resolve

Logger = logging.Logger | logging.LoggerAdapter[Any]
_LOG = logging.getLogger(__name__)
KIND = "ModelDeployment"
PLURAL = "modeldeployments"
EXPECTED_DEPLOYMENTS = 2  # the stable model server and the router


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _workload_selector(md_name: str) -> str:
    return f"{meta.LABEL_DEPLOYMENT}={md_name},!{meta.LABEL_EXPERIMENT}"


class Controller:
    """The reconcile logic shared by the handlers; state is only settings and metrics."""

    def __init__(
        self, *, settings: settings_mod.OperatorSettings, metrics: metrics_mod.Metrics
    ) -> None:
        self.settings = settings
        self.metrics = metrics

    # ---- the full reconcile ---------------------------------------------------------------------
    def reconcile(
        self, body: Mapping[str, Any], *, patch: kopf.Patch, retry: int, trigger: str
    ) -> None:
        self.metrics.reconcile_total.labels(kind=KIND).inc()
        spec = body.get("spec") or {}
        status = body.get("status") or {}
        existing: list[conditions.Condition] = list(status.get("conditions") or [])
        now = _now()
        try:
            model = resolve.resolve(
                spec.get("model") or {},
                tracking_uri=meta.tracking_uri(body, self.settings.mlflow_tracking_uri),
            )
        except client.RegistryUnavailable as exc:
            self.metrics.reconcile_errors_total.labels(kind=KIND).inc()
            self._degrade(body, patch, existing, reason="RegistryUnavailable", exc=exc, now=now)
            delay = min(
                self.settings.registry_retry_seconds * 2**retry, self.settings.resync_seconds
            )
            raise kopf.TemporaryError(str(exc), delay=delay) from exc
        except errors.InputError as exc:  # ModelNotFound, or a spec the CRD let through
            self.metrics.reconcile_errors_total.labels(kind=KIND).inc()
            reason = "ModelNotFound" if isinstance(exc, client.ModelNotFound) else "InvalidSpec"
            self._degrade(body, patch, existing, reason=reason, exc=exc, now=now)
            if trigger == "resync":
                return  # the timer keeps looking: the alias or version may appear later
            raise kopf.PermanentError(str(exc)) from exc
        try:
            self._converge(body, model=model, trigger=trigger, now=now)
        except apply.KubeError as exc:
            self.metrics.reconcile_errors_total.labels(kind=KIND).inc()
            raise kopf.TemporaryError(
                f"applying the desired objects failed: {exc}", delay=5
            ) from exc

    def _converge(
        self,
        body: Mapping[str, Any],
        *,
        model: resolve.ResolvedModel,
        trigger: str,
        now: dt.datetime,
    ) -> None:
        name, namespace = meta.name_of(body), meta.namespace_of(body)
        status = body.get("status") or {}
        generation = int(body["metadata"].get("generation", 0))
        existing: list[conditions.Condition] = list(status.get("conditions") or [])
        variants, policy = routes.route_variants(
            stable_version=model["version"], experiment=self._running_experiment(namespace, name)
        )
        objects = desired.build_desired(
            body, model=model, variants=variants, policy=policy, settings=self.settings
        )
        applied = [apply.apply(obj) for obj in objects]
        # A new ModelDeployment owns nothing it does not want (even after a crash mid-create the
        # leftovers are desired objects): prune only when the spec may have shrunk the set.
        pruned = (
            []
            if trigger == "create"
            else apply.prune(
                namespace=namespace,
                selector=_workload_selector(name),
                keep=[desired.key(obj) for obj in objects],
                owner_uid=body["metadata"]["uid"],
            )
        )
        deployments = [obj for obj in applied if obj.get("kind") == "Deployment"]
        ready, message = mdstatus.workloads_readiness(deployments, expected=EXPECTED_DEPLOYMENTS)
        previous = (status.get("model") or {}).get("version")
        reason = self._history_reason(
            body, previous=previous, version=model["version"], trigger=trigger
        )
        updated = mdstatus.served_conditions(
            existing,
            ready=ready,
            message=message,
            drift_enabled=(body.get("spec") or {}).get("drift") is not None,
            generation=generation,
            now=now,
        )
        # Written now, not through kopf's patch (applied after the handler returns): a Deployment
        # that became available meanwhile is then seen by `refresh_readiness` below, or by the
        # Deployment event handler, either way after this write and never overwritten by it.
        apply.patch_status(
            common.API_VERSION,
            KIND,
            namespace=namespace,
            name=name,
            status={
                "observedGeneration": generation,
                "model": {"alias": None, **model},  # None deletes a stale alias (merge patch)
                "history": mdstatus.next_history(
                    status.get("history") or [], version=model["version"], now=now, reason=reason
                ),
                "endpoint": meta.service_url(
                    service=meta.router_service_name(name), namespace=namespace
                ),
                "traffic": routes.traffic_summary(variants),
                "conditions": updated,
            },
        )
        if previous != model["version"]:
            _event(
                body,
                warning=False,
                reason="Rollout" if previous else "Resolved",
                message=f"serving {model['name']} version {model['version']}"
                + (f" (was {previous}; {reason})" if previous else ""),
            )
        _events_on_flips(body, existing, updated)
        if pruned:
            _event(
                body,
                warning=False,
                reason="Pruned",
                message="deleted " + ", ".join(f"{kind}/{n}" for kind, n in pruned),
            )
        if not ready:
            self.refresh_readiness(namespace, name, logger=_LOG)

    def _history_reason(
        self, body: Mapping[str, Any], *, previous: str | None, version: str, trigger: str
    ) -> str:
        reference = (body.get("spec") or {}).get("model") or {}
        if previous is None:
            return "initial deployment"
        # An Experiment that promotes a winner says why in this annotation, for this version.
        note = (body["metadata"].get("annotations") or {}).get("modelpilot.io/change-reason")
        if note:
            with contextlib.suppress(ValueError, TypeError, AttributeError):
                parsed = json.loads(note)
                if str(parsed.get("version")) == str(version) and parsed.get("reason"):
                    return str(parsed["reason"])[:1024]
        if "alias" in reference and trigger == "resync":
            return f"alias {reference['alias']} moved"
        return "spec.model changed"

    def _degrade(
        self,
        body: Mapping[str, Any],
        patch: kopf.Patch,
        existing: list[conditions.Condition],
        *,
        reason: str,
        exc: Exception,
        now: dt.datetime,
    ) -> None:
        updated = mdstatus.degraded_conditions(
            existing,
            reason=reason,
            message=str(exc),
            generation=int(body["metadata"].get("generation", 0)),
            now=now,
        )
        patch.status["conditions"] = updated
        previous = conditions.find(existing, conditions.DEGRADED)
        if previous is None or previous["status"] != "True" or previous["reason"] != reason:
            _event(body, warning=True, reason=reason, message=str(exc))

    def _running_experiment(self, namespace: str, name: str) -> dict[str, Any] | None:
        for item in apply.list_objects(common.API_VERSION, "Experiment", namespace=namespace):
            if (item.get("spec") or {}).get("deploymentRef") == name and (
                item.get("status") or {}
            ).get("phase") == "Running":
                return item
        return None

    # ---- readiness from the Deployments' own events -------------------------------------------
    def workload_changed(self, deployment: Mapping[str, Any], *, logger: Logger) -> None:
        labels = deployment["metadata"].get("labels") or {}
        md_name = labels.get(meta.LABEL_DEPLOYMENT)
        if md_name:
            self.refresh_readiness(deployment["metadata"]["namespace"], md_name, logger=logger)

    def refresh_readiness(self, namespace: str, md_name: str, *, logger: Logger) -> None:
        """Recompute Ready/Progressing from the Deployments as they are now; patch on a flip."""
        md = apply.get(common.API_VERSION, KIND, namespace=namespace, name=md_name)
        if md is None or md["metadata"].get("deletionTimestamp"):
            return
        status = md.get("status") or {}
        if "observedGeneration" not in status:
            return  # not reconciled yet; the create handler will compute readiness
        owned = [
            d
            for d in apply.list_objects(
                "apps/v1", "Deployment", namespace=namespace, selector=_workload_selector(md_name)
            )
            if any(
                o.get("uid") == md["metadata"]["uid"]
                for o in d["metadata"].get("ownerReferences") or []
            )
        ]
        ready, message = mdstatus.workloads_readiness(owned, expected=EXPECTED_DEPLOYMENTS)
        existing: list[conditions.Condition] = list(status.get("conditions") or [])
        current = conditions.find(existing, conditions.READY)
        wanted: conditions.Status = "True" if ready else "False"
        if current is not None and current["status"] == wanted:
            return
        if current is not None and current["reason"] in ("RegistryUnavailable", "ModelNotFound"):
            return  # a degraded deployment's Ready is owned by the reconcile
        updated = mdstatus.rollout_conditions(
            existing,
            ready=ready,
            message=message,
            generation=int(status["observedGeneration"]),
            now=_now(),
        )
        apply.patch_status(
            common.API_VERSION,
            KIND,
            namespace=namespace,
            name=md_name,
            status={"conditions": updated},
        )
        logger.info("ModelDeployment %s/%s Ready=%s: %s", namespace, md_name, wanted, message)
        _events_on_flips(md, existing, updated)


def _event(body: Mapping[str, Any], *, warning: bool, reason: str, message: str) -> None:
    """A Kubernetes Event on the ModelDeployment (kopf posts it asynchronously)."""
    # kopf.event, not kopf.info: the latter obeys posting.level, which we keep at WARNING so that
    # ordinary log lines do not become Events.
    kopf.event(
        cast(kopf.Body, body),
        type="Warning" if warning else "Normal",
        reason=reason,
        message=message,
    )


def _events_on_flips(
    body: Mapping[str, Any],
    before: list[conditions.Condition],
    after: list[conditions.Condition],
) -> None:
    old, new = conditions.find(before, conditions.READY), conditions.find(after, conditions.READY)
    if new is not None and (old is None or old["status"] != new["status"]):
        if new["status"] == "True":
            _event(body, warning=False, reason="Ready", message=new["message"])
        elif old is not None:
            _event(body, warning=True, reason="NotReady", message=new["message"])
    old_d, new_d = (
        conditions.find(before, conditions.DEGRADED),
        conditions.find(after, conditions.DEGRADED),
    )
    if (
        old_d is not None
        and old_d["status"] == "True"
        and new_d is not None
        and new_d["status"] == "False"
    ):
        _event(body, warning=False, reason="Recovered", message=new_d["message"])


def register(
    registry: kopf.OperatorRegistry,
    *,
    settings: settings_mod.OperatorSettings,
    metrics: metrics_mod.Metrics,
) -> Controller:
    """Declare the ModelDeployment handlers in `registry`; returns the controller (for tests)."""
    controller = Controller(settings=settings, metrics=metrics)
    group, version = common.GROUP, common.VERSION

    @kopf.on.create(group, version, PLURAL, registry=registry)
    def modeldeployment_create(body: kopf.Body, patch: kopf.Patch, retry: int, **_: Any) -> None:
        controller.reconcile(body, patch=patch, retry=retry, trigger="create")

    @kopf.on.update(group, version, PLURAL, field="spec", registry=registry)
    def modeldeployment_update(body: kopf.Body, patch: kopf.Patch, retry: int, **_: Any) -> None:
        controller.reconcile(body, patch=patch, retry=retry, trigger="update")

    @kopf.on.resume(group, version, PLURAL, registry=registry)
    def modeldeployment_resume(body: kopf.Body, patch: kopf.Patch, retry: int, **_: Any) -> None:
        controller.reconcile(body, patch=patch, retry=retry, trigger="resume")

    @kopf.timer(
        group,
        version,
        PLURAL,
        interval=settings.resync_seconds,
        initial_delay=settings.resync_seconds,
        registry=registry,
    )
    def modeldeployment_resync(body: kopf.Body, patch: kopf.Patch, **kwargs: Any) -> None:
        controller.reconcile(body, patch=patch, retry=kwargs.get("retry", 0), trigger="resync")

    @kopf.on.event(
        "apps",
        "v1",
        "deployments",
        labels={
            "app.kubernetes.io/managed-by": meta.MANAGED_BY,
            meta.LABEL_DEPLOYMENT: kopf.PRESENT,
            meta.LABEL_EXPERIMENT: kopf.ABSENT,
        },
        registry=registry,
    )
    def modeldeployment_workload_event(body: kopf.Body, logger: Logger, **_: Any) -> None:
        try:
            controller.workload_changed(body, logger=logger)
        except apply.KubeError as exc:
            # Event handlers are not retried; the resync timer recomputes readiness anyway.
            logger.warning("readiness update failed: %s", exc)

    return controller

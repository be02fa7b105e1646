"""The Experiment controller: thin kopf handlers around read counts -> decide -> write.

    create / update (spec)  validate the spec and the referenced ModelDeployment (missing: condition
                            Ready=False, phase Failed, PermanentError); apply each challenger's
                            model-server Deployment and Service (owned by the Experiment); first
                            decision (phase Running, even split); routes ConfigMap
    daemon, every policy.updateInterval
                            read the counters (sources), the split in force (routes ConfigMap),
                            `decision.decide` (pure), then in this order: status, ModelDeployment
                            (promotion), routes ConfigMap, challenger cleanup, Events, gauges
    delete                  routes back to the stable variant alone (challengers go by GC)

Design decision: the status is written *before* any side effect. Once the status says Promoted,
RolledBack or Concluded, every later loop (and every operator restart, which resumes the daemon)
re-applies the terminal actions, all idempotent (merge patch of the ModelDeployment's model,
server-side apply of the routes, delete-if-present), so a crash at any point converges to the same
world; before the status is written nothing has changed, so a crash there just redoes the update
with the same inputs. No state is kept in memory between loops.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Mapping
from typing import Any, cast

import kopf
import prometheus_client

from modelpilot import errors
from modelpilot.api import common
from modelpilot.kube import apply
from modelpilot.operator import metrics as metrics_mod
from modelpilot.operator import settings as settings_mod
from modelpilot.operator.builders import meta, routes, workloads
from modelpilot.operator.experiment import conditions, decision, inforce, sources
from modelpilot.operator.experiment import spec as spec_mod

Logger = logging.Logger | logging.LoggerAdapter[Any]
KIND = "Experiment"
PLURAL = "experiments"
COND_READY = "Ready"
ANNOTATION_CHANGE_REASON = "modelpilot.io/change-reason"
"""On a ModelDeployment: `{"version": v, "reason": why}`; its controller copies `why` into
`status.history` when it rolls out version `v` (how a promotion's reason reaches the history)."""
PHASES = ("Pending", "Running", "Promoted", "RolledBack", "Concluded", "Failed")


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Gauges:
    """The Experiment gauges of docs/architecture.md, on the operator's registry."""

    def __init__(self, registry: prometheus_client.CollectorRegistry) -> None:
        labels = ["namespace", "experiment", "variant"]

        def gauge(name: str, doc: str, names: list[str]) -> prometheus_client.Gauge:
            return prometheus_client.Gauge(name, doc, names, registry=registry)

        self.weight = gauge("modelpilot_experiment_weight", "Traffic weight (0..100).", labels)
        self.posterior_mean = gauge(
            "modelpilot_experiment_posterior_mean", "Posterior mean reward.", labels
        )
        self.p_best = gauge(
            "modelpilot_experiment_probability_to_be_best", "Probability to be best.", labels
        )
        self.requests = gauge("modelpilot_experiment_requests", "Requests seen.", labels)
        self.rewards = gauge("modelpilot_experiment_rewards", "Rewards joined.", labels)
        self.srm = gauge(
            "modelpilot_experiment_srm_pvalue",
            "Sample-ratio-mismatch p-value of the last interval.",
            ["namespace", "experiment"],
        )
        self.phase = gauge(
            "modelpilot_experiment_phase",
            "1 for the experiment's current phase, 0 otherwise.",
            ["namespace", "experiment", "phase"],
        )

    def observe(self, *, namespace: str, name: str, status: Mapping[str, Any]) -> None:
        for v in status.get("variants") or []:
            key = (namespace, name, v["name"])
            self.weight.labels(*key).set(v.get("weight", 0))
            self.posterior_mean.labels(*key).set(v.get("posteriorMean", 0.0))
            self.p_best.labels(*key).set(v.get("probabilityToBeBest", 0.0))
            self.requests.labels(*key).set(v.get("requests", 0))
            self.rewards.labels(*key).set(v.get("rewards", 0))
        p_value = (status.get("srm") or {}).get("pValue")
        if p_value is not None:
            self.srm.labels(namespace, name).set(p_value)
        for phase in PHASES:
            self.phase.labels(namespace, name, phase).set(
                1.0 if status.get("phase") == phase else 0.0
            )


def _event(body: Mapping[str, Any], *, warning: bool, reason: str, message: str) -> None:
    # kopf.event, not kopf.info: the operator keeps posting.level at WARNING for log lines.
    kopf.event(
        cast(kopf.Body, body),
        type="Warning" if warning else "Normal",
        reason=reason,
        message=message[:1000],
    )


def _traffic(status: Mapping[str, Any]) -> str:
    return ",".join(f"{v['name']}={v.get('weight', 0)}" for v in status.get("variants") or [])


class Controller:
    """The experiment logic shared by the handlers; holds only settings, gauges and a source."""

    def __init__(
        self,
        *,
        settings: settings_mod.OperatorSettings,
        metrics: metrics_mod.Metrics,
        source: sources.Source,
    ) -> None:
        self.settings = settings
        self.metrics = metrics
        self.gauges = Gauges(metrics.registry)
        self.source = source

    # ---- reading the world ----------------------------------------------------------------
    def _experiment(self, namespace: str, name: str) -> dict[str, Any] | None:
        return apply.get(common.API_VERSION, KIND, namespace=namespace, name=name)

    def _deployment(self, namespace: str, name: str) -> dict[str, Any] | None:
        return apply.get(common.API_VERSION, "ModelDeployment", namespace=namespace, name=name)

    def _routes_in_force(self, namespace: str, md_name: str) -> dict[str, Any] | None:
        cm = apply.get("v1", "ConfigMap", namespace=namespace, name=f"{md_name}-routes")
        raw = ((cm or {}).get("data") or {}).get(routes.ROUTES_KEY)
        if not raw:
            return None
        try:
            doc: dict[str, Any] = json.loads(raw)
        except json.JSONDecodeError:
            return None
        return doc

    def _write_status(self, body: Mapping[str, Any], status: Mapping[str, Any]) -> None:
        out = dict(status)
        out["observedGeneration"] = int(body["metadata"].get("generation", 0))
        out["traffic"] = _traffic(status)
        apply.patch_status(
            common.API_VERSION,
            KIND,
            namespace=meta.namespace_of(body),
            name=meta.name_of(body),
            status=out,
        )

    def _fail(
        self, body: Mapping[str, Any], *, reason: str, message: str, phase: str = "Failed"
    ) -> None:
        status = body.get("status") or {}
        conds = conditions.set_condition(
            status.get("conditions") or [],
            type_=COND_READY,
            status=False,
            reason=reason,
            message=message,
            now=decision.timestamp(_now()),
        )
        apply.patch_status(
            common.API_VERSION,
            KIND,
            namespace=meta.namespace_of(body),
            name=meta.name_of(body),
            status={
                "phase": phase,
                "conditions": conds,
                "observedGeneration": int(body["metadata"].get("generation", 0)),
            },
        )
        _event(body, warning=True, reason=reason, message=message)

    # ---- create / update ----------------------------------------------------------------
    def start(self, body: Mapping[str, Any], *, logger: Logger, trigger: str) -> None:
        """Validate, create the challengers, take the first decision, write the routes."""
        self.metrics.reconcile_total.labels(kind=KIND).inc()
        namespace, name = meta.namespace_of(body), meta.name_of(body)
        try:
            spec = spec_mod.parse_spec(body.get("spec") or {})
        except errors.InputError as exc:
            self.metrics.reconcile_errors_total.labels(kind=KIND).inc()
            self._fail(body, reason="InvalidSpec", message=str(exc))
            raise kopf.PermanentError(str(exc)) from exc
        md = self._deployment(namespace, spec.deployment_ref)
        if md is None:
            self.metrics.reconcile_errors_total.labels(kind=KIND).inc()
            message = (
                f"spec.deploymentRef: ModelDeployment {namespace}/{spec.deployment_ref} not found"
            )
            self._fail(body, reason="DeploymentNotFound", message=message)
            raise kopf.PermanentError(message)
        stable_model = (md.get("status") or {}).get("model") or {}
        if not stable_model.get("version"):
            raise kopf.TemporaryError(
                f"ModelDeployment {spec.deployment_ref} has not resolved its model yet", delay=2
            )
        status = dict(body.get("status") or {})
        if status.get("phase") in decision.TERMINAL:
            return  # a finished experiment is not restarted by a spec edit
        self._apply_challengers(body, md, spec)
        now = _now()
        if not status.get("variants"):
            status = decision.initial_status(
                spec,
                stable_model={"name": stable_model["name"], "version": stable_model["version"]},
                now=now,
            )
        elif trigger == "update" and (status.get("srm") or {}).get("paused"):
            # The user changed the spec: that is the acknowledgement that lifts an SRM pause.
            status["srm"] = {**status["srm"], "paused": False, "mismatch": False}
            status["conditions"] = conditions.set_condition(
                status.get("conditions") or [],
                type_=decision.COND_SRM,
                status=False,
                reason="Acknowledged",
                message="the spec changed; adaptation resumed",
                now=decision.timestamp(now),
            )
        status["conditions"] = conditions.set_condition(
            status.get("conditions") or [],
            type_=COND_READY,
            status=True,
            reason="ChallengersCreated",
            message=f"{len(spec.variants)} challenger(s) on ModelDeployment {spec.deployment_ref}",
            now=decision.timestamp(now),
        )
        outcome = decision.decide(
            spec,
            status,
            counts={},
            shares_in_force=None,
            now=now,
            seed_key=f"{namespace}/{name}",
        )
        self._act(body, md, spec, outcome, logger=logger)
        if trigger == "create":
            _event(
                body,
                warning=False,
                reason="Started",
                message=f"experiment on {spec.deployment_ref}: "
                + ", ".join(f"{v.name}=v{v.model_version}" for v in spec.variants)
                + f" against stable v{stable_model['version']}",
            )

    def _apply_challengers(
        self, body: Mapping[str, Any], md: Mapping[str, Any], spec: spec_mod.ExperimentSpec
    ) -> None:
        for v in spec.variants:
            model = {"name": v.model_name, "version": v.model_version}
            owner = body
            apply.apply(
                workloads.build_model_server_deployment(
                    md,
                    variant=v.name,
                    model=model,
                    replicas=v.replicas,
                    settings=self.settings,
                    owner=owner,
                    experiment=meta.name_of(body),
                )
            )
            apply.apply(
                workloads.build_model_server_service(
                    md, variant=v.name, owner=owner, experiment=meta.name_of(body)
                )
            )

    def _remove_challengers(self, body: Mapping[str, Any], md_name: str) -> list[str]:
        namespace, gone = meta.namespace_of(body), []
        selector = f"{meta.LABEL_DEPLOYMENT}={md_name},{meta.LABEL_EXPERIMENT}={meta.name_of(body)}"
        uid = body["metadata"]["uid"]
        for kind, api_version in (("Deployment", "apps/v1"), ("Service", "v1")):
            for item in apply.list_objects(
                api_version, kind, namespace=namespace, selector=selector
            ):
                owners = item["metadata"].get("ownerReferences") or []
                if any(o.get("uid") == uid for o in owners) and apply.delete(
                    api_version, kind, namespace=namespace, name=item["metadata"]["name"]
                ):
                    gone.append(f"{kind}/{item['metadata']['name']}")
        return gone

    # ---- the loop ---------------------------------------------------------------------------
    def step(self, namespace: str, name: str, *, logger: Logger) -> str | None:
        """One update; returns the phase (None when the Experiment is gone or not started)."""
        body = self._experiment(namespace, name)
        if body is None or body["metadata"].get("deletionTimestamp"):
            return None
        status = body.get("status") or {}
        if status.get("phase") in (None, "Pending", "Failed") or not status.get("variants"):
            return cast(str | None, status.get("phase"))
        self.metrics.reconcile_total.labels(kind=KIND).inc()
        spec = spec_mod.parse_spec(body.get("spec") or {})
        md = self._deployment(namespace, spec.deployment_ref)
        if md is None:
            self._fail(
                body,
                reason="DeploymentNotFound",
                message=f"ModelDeployment {spec.deployment_ref} disappeared during the experiment",
            )
            return "Failed"
        counts: Mapping[str, Any] = {}
        if status.get("phase") not in decision.TERMINAL:
            try:
                counts = self.source.read(namespace=namespace, deployment=spec.deployment_ref)
            except sources.SourceError as exc:
                self.metrics.reconcile_errors_total.labels(kind=KIND).inc()
                logger.warning("experiment %s/%s: counters unreadable: %s", namespace, name, exc)
                return cast(str, status.get("phase"))
        in_force = self._routes_in_force(namespace, spec.deployment_ref)
        shares = inforce.expected_shares(in_force) if in_force else None
        outcome = decision.decide(
            spec,
            status,
            counts=counts,
            shares_in_force=shares,
            now=_now(),
            seed_key=f"{namespace}/{name}",
        )
        self._act(body, md, spec, outcome, logger=logger)
        return cast(str, outcome.status["phase"])

    def _act(
        self,
        body: Mapping[str, Any],
        md: Mapping[str, Any],
        spec: spec_mod.ExperimentSpec,
        outcome: decision.Outcome,
        *,
        logger: Logger,
    ) -> None:
        namespace, name = meta.namespace_of(body), meta.name_of(body)
        before = (body.get("status") or {}).get("phase")
        status = outcome.status
        self._write_status(body, status)  # first: see the module docstring
        phase = status["phase"]
        for action in outcome.actions:
            if action.kind == "promote" and action.variant:
                self._promote(md, status, variant=action.variant, reason=action.message)
            elif action.kind == "roll-back" and action.variant:
                _event(body, warning=True, reason="RolledBack", message=action.message)
            elif action.kind == "pause":
                _event(body, warning=True, reason="SampleRatioMismatch", message=action.message)
        self._write_routes(md, {**body, "status": status})
        if phase in decision.TERMINAL:
            gone = self._remove_challengers(body, spec.deployment_ref)
            if gone:
                logger.info("experiment %s/%s: removed %s", namespace, name, ", ".join(gone))
        if phase != before and phase in decision.TERMINAL:
            _event(
                body,
                warning=phase == decision.ROLLED_BACK,
                reason=phase,
                message=(status.get("decision") or {}).get("reason", phase),
            )
        self.gauges.observe(namespace=namespace, name=name, status=status)

    def _write_routes(self, md: Mapping[str, Any], experiment: Mapping[str, Any] | None) -> None:
        """The same single builder as the ModelDeployment controller, with the same inputs."""
        md_status = md.get("status") or {}
        stable_version = str((md_status.get("model") or {}).get("version", ""))
        variants, policy = routes.route_variants(
            stable_version=stable_version, experiment=experiment
        )
        apply.apply(routes.build_routes_configmap(md, variants=variants, policy=policy))

    def _promote(
        self, md: Mapping[str, Any], status: Mapping[str, Any], *, variant: str, reason: str
    ) -> None:
        """Point the ModelDeployment at the winner's version (idempotent merge patch)."""
        winner = next(v for v in status["variants"] if v["name"] == variant)
        model = winner.get("model") or {}
        current = (md.get("spec") or {}).get("model") or {}
        note = json.dumps({"version": str(model.get("version")), "reason": f"promoted: {reason}"})
        if (
            current.get("version") == model.get("version")
            and current.get("name") == model.get("name")
            and (md["metadata"].get("annotations") or {}).get(ANNOTATION_CHANGE_REASON) == note
        ):
            return
        apply.request(
            "PATCH",
            apply.path(
                common.API_VERSION,
                "ModelDeployment",
                namespace=meta.namespace_of(md),
                name=meta.name_of(md),
            ),
            body={
                "metadata": {"annotations": {ANNOTATION_CHANGE_REASON: note}},
                # alias None removes it (merge patch): exactly one of alias and version.
                "spec": {
                    "model": {
                        "name": model.get("name"),
                        "version": str(model.get("version")),
                        "alias": None,
                    }
                },
            },
            content_type="application/merge-patch+json",
        )
        _event(
            md,
            warning=False,
            reason="Promoted",
            message=f"experiment winner {variant}: model version {model.get('version')}",
        )

    # ---- delete -------------------------------------------------------------------------------
    def stop(self, body: Mapping[str, Any]) -> None:
        """The Experiment is being deleted: the routes go back to the stable variant alone."""
        spec = body.get("spec") or {}
        md = self._deployment(meta.namespace_of(body), str(spec.get("deploymentRef", "")))
        if md is not None:
            self._write_routes(md, None)


def register(
    registry: kopf.OperatorRegistry,
    *,
    settings: settings_mod.OperatorSettings,
    metrics: metrics_mod.Metrics,
    source: sources.Source | None = None,
) -> Controller:
    """Declare the Experiment handlers in `registry`; returns the controller (for tests)."""
    controller = Controller(
        settings=settings,
        metrics=metrics,
        source=source or sources.make_source(settings.metrics_source),
    )
    group, version = common.GROUP, common.VERSION

    @kopf.on.create(group, version, PLURAL, registry=registry)
    def experiment_create(body: kopf.Body, logger: Logger, **_: Any) -> None:
        try:
            controller.start(body, logger=logger, trigger="create")
        except apply.KubeError as exc:
            raise kopf.TemporaryError(f"creating the experiment failed: {exc}", delay=5) from exc

    @kopf.on.update(group, version, PLURAL, field="spec", registry=registry)
    def experiment_update(body: kopf.Body, logger: Logger, **_: Any) -> None:
        try:
            controller.start(body, logger=logger, trigger="update")
        except apply.KubeError as exc:
            raise kopf.TemporaryError(f"updating the experiment failed: {exc}", delay=5) from exc

    @kopf.daemon(group, version, PLURAL, registry=registry, cancellation_timeout=5.0)
    def experiment_loop(
        stopped: kopf.DaemonStopped, body: kopf.Body, logger: Logger, **_: Any
    ) -> None:
        namespace, name = meta.namespace_of(body), meta.name_of(body)
        while not stopped:
            spec_now = body.get("spec") or {}
            try:
                interval = spec_mod.parse_duration(
                    (spec_now.get("policy") or {}).get("updateInterval", "30s"),
                    field="spec.policy.updateInterval",
                )
            except errors.InputError:
                interval = 30.0
            if stopped.wait(interval):
                break
            try:
                phase = controller.step(namespace, name, logger=logger)
            except (apply.KubeError, errors.InputError) as exc:
                controller.metrics.reconcile_errors_total.labels(kind=KIND).inc()
                logger.warning("experiment %s/%s: update failed: %s", namespace, name, exc)
                continue
            if phase is None and controller._experiment(namespace, name) is None:
                break
            if phase in decision.TERMINAL:
                # One more pass already converged the terminal actions; nothing left to adapt.
                break

    @kopf.on.delete(group, version, PLURAL, registry=registry)
    def experiment_delete(body: kopf.Body, **_: Any) -> None:
        try:
            controller.stop(body)
        except apply.KubeError as exc:
            raise kopf.TemporaryError(f"restoring the routes failed: {exc}", delay=5) from exc

    return controller

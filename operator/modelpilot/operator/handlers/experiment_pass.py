"""One pass of an Experiment's loop: the blocking part, run on the loop's thread pool.

    reconcile(namespace, name, admission verdict, step due?) -> phase
      not started   verdict refused -> Pending, Ready=False with the reason (written on change);
                    admitted -> challengers applied, first decision, routes (`start`)
      running       spec changed -> `start(fresh=False)` (the SRM acknowledgement); step due ->
                    counters, `decision.decide`, status, promotion, routes, cleanup (`step`);
                    deployment gone or claim lost -> challengers removed, Pending (`_wind_down`)
      finished      step due -> the terminal actions re-applied
    stop            on delete: routes back to stable, only if this Experiment held the split

Design decision: the status is written *before* any side effect of a decision. Once the status
says Promoted, RolledBack or Concluded, every later pass (and every operator restart, which resumes
the daemon) re-applies the terminal actions, all idempotent (merge patch of the ModelDeployment's
model, server-side apply of the routes, delete-if-present), so a crash at any point converges to
the same world; before the status is written nothing has changed, so a crash there just redoes the
update with the same inputs. Winding a running Experiment down is the other way round (challengers
first, then the status that says so), for the same reason. No state is kept in memory between
passes: each pass reads the Experiment and its ModelDeployment from the API server.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping
from typing import Any, cast

import kopf
import prometheus_client

from modelpilot import errors
from modelpilot.api import common, constants
from modelpilot.api import routes as routes_contract
from modelpilot.kube import apply
from modelpilot.operator import metrics as metrics_mod
from modelpilot.operator import settings as settings_mod
from modelpilot.operator.builders import meta, routes, workloads
from modelpilot.operator.experiment import (
    admission,
    conditions,
    decision,
    inforce,
    promotion,
    sources,
)
from modelpilot.operator.experiment import counts as counts_mod
from modelpilot.operator.experiment import spec as spec_mod

_LOG = logging.getLogger(__name__)

KIND = "Experiment"
PLURAL = "experiments"
COND_READY = "Ready"
ANNOTATION_CHANGE_REASON = constants.ANNOTATION_CHANGE_REASON
"""On a ModelDeployment: `{"version": v, "reason": why}` (`modelpilot.operator.changereason`)."""
PHASES = constants.PHASES


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
    """Normal for routine work; Warning only where a person must act (issue 18, item 6)."""
    # kopf.event, not kopf.info: the operator keeps posting.level at WARNING for log lines.
    kopf.event(
        cast(kopf.Body, body),
        type="Warning" if warning else "Normal",
        reason=reason,
        message=message[:1000],
    )


def _traffic(status: Mapping[str, Any]) -> str:
    return ",".join(f"{v['name']}={v.get('weight', 0)}" for v in status.get("variants") or [])


def _ready(status: Mapping[str, Any]) -> Mapping[str, Any] | None:
    return conditions.get(status.get("conditions") or [], COND_READY)


class Controller:
    """The experiment logic of one pass; holds only settings, metrics, gauges and a source."""

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
        md = apply.get(common.API_VERSION, "ModelDeployment", namespace=namespace, name=name)
        return None if md is None or md["metadata"].get("deletionTimestamp") else md

    def _routes_in_force(self, namespace: str, md_name: str) -> routes_contract.Routes | None:
        """The routes document the routers follow, read as they read it (`api.routes.loads`);
        None when there is none, or one they would refuse too (then no SRM test this time)."""
        cm = apply.get("v1", "ConfigMap", namespace=namespace, name=f"{md_name}-routes")
        raw = ((cm or {}).get("data") or {}).get(routes.ROUTES_KEY)
        if not raw:
            return None
        try:
            return routes_contract.loads(raw)
        except routes_contract.InvalidRoutes as exc:
            _LOG.warning("%s/%s-routes: %s", namespace, md_name, exc)
            return None

    # ---- writing status -------------------------------------------------------------------
    def _patch_status(self, body: Mapping[str, Any], status: Mapping[str, Any]) -> None:
        """Every status write says which generation it observed, on itself and each condition."""
        generation = int(body["metadata"].get("generation", 0))
        out = dict(status)
        out["observedGeneration"] = generation
        if "conditions" in out:
            out["conditions"] = admission.stamp_generation(out["conditions"] or [], generation)
        apply.patch_status(
            common.API_VERSION,
            KIND,
            namespace=meta.namespace_of(body),
            name=meta.name_of(body),
            status=out,
        )

    def _write_status(self, body: Mapping[str, Any], status: Mapping[str, Any]) -> None:
        self._patch_status(body, {**status, "traffic": _traffic(status)})

    def _fail(self, body: Mapping[str, Any], *, reason: str, message: str) -> None:
        """An invalid spec: Failed until the spec changes (a person must act: a Warning)."""
        status = body.get("status") or {}
        conds = conditions.set_condition(
            status.get("conditions") or [],
            type_=COND_READY,
            status=False,
            reason=reason,
            message=message,
            now=decision.timestamp(_now()),
        )
        self._patch_status(body, {"phase": constants.FAILED, "conditions": conds})
        _event(body, warning=True, reason=reason, message=message)

    # ---- one pass ---------------------------------------------------------------------------
    def reconcile(
        self, namespace: str, name: str, *, verdict: admission.Admission, step_due: bool
    ) -> str | None:
        """One level-triggered pass; returns the phase (None when the Experiment is gone)."""
        body = self._experiment(namespace, name)
        if body is None or body["metadata"].get("deletionTimestamp"):
            return None
        status = body.get("status") or {}
        phase = status.get("phase")
        generation = int(body["metadata"].get("generation", 0))
        try:
            spec = spec_mod.parse_spec(body.get("spec") or {})
        except errors.InputError as exc:
            ready = _ready(status) or {}
            if (
                phase != constants.FAILED
                or ready.get("reason") != "InvalidSpec"
                or status.get("observedGeneration") != generation
            ):
                self.metrics.reconcile_errors_total.labels(kind=KIND).inc()
                if phase == constants.RUNNING:
                    self._stop_running(body, str((body.get("spec") or {}).get("deploymentRef")))
                self._fail(body, reason="InvalidSpec", message=str(exc))
            return constants.FAILED
        if phase in admission.FINISHED:
            if step_due:
                md = self._deployment(namespace, spec.deployment_ref)
                if md is not None:
                    self.step(body, spec, md)
            return cast(str, phase)
        if phase != constants.RUNNING or not status.get("variants"):
            # Not started: Pending, a fixed InvalidSpec, or a Failed of an earlier version.
            if not verdict.admitted:
                self._wait(body, verdict)
                return constants.PENDING
            md = self._deployment(namespace, spec.deployment_ref)
            view = None if md is None else admission.deployment_view(md)
            if md is None or view is None or view.version is None:
                # The index was ahead of the API server: say what the server says, and wait.
                self._wait(
                    body,
                    admission.admit(
                        me=admission.claim(body),
                        deployment_ref=spec.deployment_ref,
                        deployment=view,
                        claims=[],
                    ),
                )
                return constants.PENDING
            return self.start(body, md, spec, fresh=True)
        md = self._deployment(namespace, spec.deployment_ref)
        if md is None or not verdict.admitted:
            if md is None:  # the API server is ahead of the index: believe it
                verdict = admission.admit(
                    me=admission.claim(body),
                    deployment_ref=spec.deployment_ref,
                    deployment=None,
                    claims=[],
                )
            self._wind_down(body, spec, verdict)
            return constants.PENDING
        if status.get("observedGeneration") != generation:
            return self.start(body, md, spec, fresh=False)
        if step_due:
            return self.step(body, spec, md)
        return cast(str, phase)

    def _wait(self, body: Mapping[str, Any], verdict: admission.Admission) -> None:
        """Pending with the reason; written (and a Normal Event posted) only when it changes."""
        status = body.get("status") or {}
        ready = _ready(status) or {}
        generation = int(body["metadata"].get("generation", 0))
        if (
            status.get("phase") == constants.PENDING
            and ready.get("reason") == verdict.reason
            # A wind-down's message says more (what was removed) and starts with the verdict's.
            and str(ready.get("message", "")).startswith(verdict.message)
            and status.get("observedGeneration") == generation
        ):
            return
        conds = conditions.set_condition(
            [c for c in status.get("conditions") or [] if c.get("type") == COND_READY],
            type_=COND_READY,
            status=False,
            reason=verdict.reason,
            message=verdict.message,
            now=decision.timestamp(_now()),
        )
        self._patch_status(body, {"phase": constants.PENDING, "conditions": conds, "traffic": ""})
        _LOG.info(
            "experiment %s/%s: waiting: %s",
            meta.namespace_of(body),
            meta.name_of(body),
            verdict.message,
        )
        if ready.get("reason") != verdict.reason:
            _event(body, warning=False, reason=verdict.reason, message=verdict.message)

    def _wind_down(
        self,
        body: Mapping[str, Any],
        spec: spec_mod.ExperimentSpec,
        verdict: admission.Admission,
    ) -> None:
        """A running Experiment lost its ModelDeployment (or its claim): its workloads go, and
        the status says why instead of claiming a split that no longer exists."""
        namespace, name = meta.namespace_of(body), meta.name_of(body)
        gone = self._remove_challengers(body, spec.deployment_ref)
        message = (
            f"{verdict.message}. The running experiment was stopped"
            + (f" and {', '.join(gone)} removed" if gone else "")
            + "; it starts again from the beginning when admitted"
        )
        conds = conditions.set_condition(
            [
                c
                for c in (body.get("status") or {}).get("conditions") or []
                if c.get("type") == COND_READY
            ],
            type_=COND_READY,
            status=False,
            reason=verdict.reason,
            message=message,
            now=decision.timestamp(_now()),
        )
        status: dict[str, Any] = {
            "phase": constants.PENDING,
            "conditions": conds,
            "variants": [],
            "traffic": "",
            "startTime": None,
            "lastUpdateTime": None,
            "counters": None,
            "srm": None,
            "decision": None,
            "report": None,
        }
        self._patch_status(body, status)
        _LOG.warning("experiment %s/%s: stopped: %s", namespace, name, message)
        # The deployment deleted under a running experiment needs a person (recreate it or delete
        # the experiment); losing the claim to an older running one is the queue working.
        _event(
            body,
            warning=verdict.reason == admission.DEPLOYMENT_NOT_FOUND,
            reason="Stopped",
            message=message,
        )
        self.gauges.observe(namespace=namespace, name=name, status=status)

    def _stop_running(self, body: Mapping[str, Any], md_name: str) -> None:
        """Challengers removed and the routes back to stable (a running spec turned invalid)."""
        self._remove_challengers(body, md_name)
        md = self._deployment(meta.namespace_of(body), md_name)
        if md is not None:
            self._write_routes(md, None)

    # ---- start / spec change ----------------------------------------------------------------
    def start(
        self,
        body: Mapping[str, Any],
        md: Mapping[str, Any],
        spec: spec_mod.ExperimentSpec,
        *,
        fresh: bool,
    ) -> str:
        """Create the challengers, take the first decision, write the routes (`fresh`); or take
        a spec change of a running Experiment into account (the SRM acknowledgement)."""
        self.metrics.reconcile_total.labels(kind=KIND).inc()
        namespace, name = meta.namespace_of(body), meta.name_of(body)
        stable_model = (md.get("status") or {}).get("model") or {}
        status = {} if fresh else dict(body.get("status") or {})
        applied = self._apply_challengers(body, md, spec)
        if fresh:
            # No routes, so no traffic, until every challenger can answer (its readiness probe
            # passes once the model is loaded): the loop polls again while this waits.
            starting = admission.challengers_ready(
                applied, variants=[v.name for v in spec.variants]
            )
            if not starting.admitted:
                self._wait(body, starting)
                return constants.PENDING
        now = _now()
        if fresh:
            baseline: counts_mod.Observed = {}
            try:
                # What the routers counted before this Experiment: its baseline, not its data.
                baseline = self.source.read(namespace=namespace, deployment=spec.deployment_ref)
            except sources.SourceError as exc:
                # No router to read yet: then nothing was counted before, and nothing is lost.
                _LOG.info("experiment %s/%s: no baseline counters: %s", namespace, name, exc)
            status = decision.initial_status(
                spec,
                stable_model={"name": stable_model["name"], "version": stable_model["version"]},
                now=now,
                baseline=baseline,
            )
            status["conditions"] = [
                c
                for c in (body.get("status") or {}).get("conditions") or []
                if c.get("type") == COND_READY
            ]
        else:
            # The user changed the spec: that is the acknowledgement that lifts an SRM pause.
            status = decision.acknowledge_srm(status, now=now)
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
        self._act(body, md, spec, outcome)
        if fresh:
            _event(
                body,
                warning=False,
                reason="Started",
                message=f"experiment on {spec.deployment_ref}: "
                + ", ".join(f"{v.name}=v{v.model_version}" for v in spec.variants)
                + f" against stable v{stable_model['version']}",
            )
            _LOG.info("experiment %s/%s: started on %s", namespace, name, spec.deployment_ref)
        return cast(str, outcome.status["phase"])

    def _apply_challengers(
        self, body: Mapping[str, Any], md: Mapping[str, Any], spec: spec_mod.ExperimentSpec
    ) -> list[dict[str, Any]]:
        """Apply each challenger's Deployment and Service; the Deployments as stored."""
        deployments = []
        for v in spec.variants:
            model = {"name": v.model_name, "version": v.model_version}
            owner = body
            stored = apply.apply(
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
            deployments.append(stored)
            apply.apply(
                workloads.build_model_server_service(
                    md, variant=v.name, owner=owner, experiment=meta.name_of(body)
                )
            )
        return deployments

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

    # ---- the update ---------------------------------------------------------------------------
    def step(
        self, body: Mapping[str, Any], spec: spec_mod.ExperimentSpec, md: Mapping[str, Any]
    ) -> str:
        """One update of a running (or finished: re-apply) Experiment; returns the phase."""
        namespace, name = meta.namespace_of(body), meta.name_of(body)
        status = body.get("status") or {}
        self.metrics.reconcile_total.labels(kind=KIND).inc()
        counts: Mapping[str, Any] = {}
        if status.get("phase") not in decision.TERMINAL:
            try:
                counts = self.source.read(namespace=namespace, deployment=spec.deployment_ref)
            except sources.SourceError as exc:
                self.metrics.reconcile_errors_total.labels(kind=KIND).inc()
                # A log line, not an Event: it retries by itself next interval.
                _LOG.warning("experiment %s/%s: counters unreadable: %s", namespace, name, exc)
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
        self._act(body, md, spec, outcome)
        return cast(str, outcome.status["phase"])

    def _act(
        self,
        body: Mapping[str, Any],
        md: Mapping[str, Any],
        spec: spec_mod.ExperimentSpec,
        outcome: decision.Outcome,
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
                # The loop acted by itself: routine, not a page.
                _event(body, warning=False, reason=constants.ROLLED_BACK, message=action.message)
            elif action.kind == "pause":
                # Adaptation stays frozen until someone fixes the reporting and edits the spec.
                _event(body, warning=True, reason="SampleRatioMismatch", message=action.message)
        self._write_routes(md, {**body, "status": status})
        # After the routes: no router may still send traffic to a challenger being removed.
        if any(action.kind == "remove-challengers" for action in outcome.actions):
            gone = self._remove_challengers(body, spec.deployment_ref)
            if gone:
                _LOG.info("experiment %s/%s: removed %s", namespace, name, ", ".join(gone))
        if phase != before and phase in decision.TERMINAL:
            _event(
                body,
                warning=False,
                reason=phase,
                message=(status.get("decision") or {}).get("reason", phase),
            )
            _LOG.info("experiment %s/%s: %s", namespace, name, phase)
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
        patch = promotion.build_promotion_patch(md, winner_model=model, reason=reason)
        if patch is None:
            return  # already promoted: nothing to send (the action is idempotent)
        apply.request(
            "PATCH",
            apply.path(
                common.API_VERSION,
                "ModelDeployment",
                namespace=meta.namespace_of(md),
                name=meta.name_of(md),
            ),
            body=patch,
            content_type="application/merge-patch+json",
        )
        _event(
            md,
            warning=False,
            reason=constants.PROMOTED,
            message=f"experiment winner {variant}: model version {model.get('version')}",
        )

    # ---- delete -------------------------------------------------------------------------------
    def stop(self, body: Mapping[str, Any]) -> None:
        """The Experiment is being deleted: if it held the split, routes back to stable alone.

        A waiting Experiment never wrote the routes, so it must not rewrite them either: another
        Experiment may be running on the same deployment."""
        if (body.get("status") or {}).get("phase") != constants.RUNNING:
            return
        spec = body.get("spec") or {}
        md = self._deployment(meta.namespace_of(body), str(spec.get("deploymentRef", "")))
        if md is not None:
            self._write_routes(md, None)

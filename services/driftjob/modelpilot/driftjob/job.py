"""One run of the drift job: profile from MLflow, windows from the pods, compare, write status.

Design decision on exit codes (a CronJob's failed-jobs history and alerting read them): drift is a
*result*, exit 0; exit 1 (`JobFailedError`) only when the job could not do its work (no window
collected, the status could not be written); exit 2 for bad input (an unknown deployment, a version
without a reference profile). Emitting the Event and pushing gauges are best effort: their failure
is logged, never turns a finished comparison into a failed job.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from modelpilot import errors
from modelpilot.api import conditions, constants
from modelpilot.driftjob import collect, persisted, status
from modelpilot.stats import drift as drift_stats
from modelpilot.stats import profile as profile_mod

log = logging.getLogger("modelpilot.driftjob")

API_VERSION = constants.API_VERSION
KIND = constants.MODEL_DEPLOYMENT_KIND
PUSH_JOB = "modelpilot-drift"


class JobFailedError(errors.CheckFailed):
    """The job could not do its work (exit 1): nothing to compare, or the status write failed."""


@dataclass
class Options:
    deployment: str
    namespace: str
    window_urls: Sequence[str] = ()
    model: tuple[str, str] | None = None
    tracking_uri: str | None = None
    pushgateway: str | None = None
    write_status: bool = True
    psi_threshold: float | None = None
    ks_pvalue: float | None = None
    methods: Sequence[str] | None = None
    timeout_seconds: float = 10.0
    max_window_bytes: int = collect.MAX_WINDOW_BYTES
    persisted: bool = True
    """Also merge the windows model servers flushed to MLflow (those of processes now gone)."""


@dataclass
class Outcome:
    summary: dict[str, Any]
    report: drift_stats.DriftReport | None
    sources: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    duplicates: dict[str, str] = field(default_factory=dict)
    persisted: int = 0  # windows merged from MLflow flushes (processes no longer answering)


def _now() -> str:
    return conditions.timestamp(dt.datetime.now(dt.UTC))


def _read_deployment(options: Options) -> dict[str, Any]:
    from modelpilot.kube import apply as kube_apply

    try:
        md = kube_apply.get(API_VERSION, KIND, namespace=options.namespace, name=options.deployment)
    except kube_apply.KubeError as exc:
        raise JobFailedError(
            f"reading modeldeployment {options.namespace}/{options.deployment}: {exc}"
        ) from exc
    if md is None:
        raise errors.InputError(
            f"--deployment: no ModelDeployment {options.deployment!r} in namespace "
            f"{options.namespace!r}"
        )
    return md


def _served_model(md: dict[str, Any] | None, options: Options) -> tuple[str, str]:
    if options.model is not None:
        return options.model
    model = ((md or {}).get("status") or {}).get("model") or {}
    if not model.get("name") or not model.get("version"):
        raise JobFailedError(
            f"modeldeployment {options.namespace}/{options.deployment}: status.model has no "
            "resolved name/version yet (the operator has not reconciled it)"
        )
    return str(model["name"]), str(model["version"])


def _thresholds(md: dict[str, Any] | None, options: Options) -> dict[str, Any]:
    spec = ((md or {}).get("spec") or {}).get("drift") or {}
    return {
        "psi_threshold": options.psi_threshold
        if options.psi_threshold is not None
        else float(spec.get("psiThreshold", 0.2)),
        "ks_pvalue": options.ks_pvalue
        if options.ks_pvalue is not None
        else float(spec.get("ksPValue", 0.01)),
        "methods": tuple(options.methods or spec.get("methods") or ("psi", "ks")),
    }


def _write_status(
    options: Options,
    md: dict[str, Any],
    *,
    drift: dict[str, Any] | None,
    condition: tuple[conditions.Status, str, str],
    now: str,
) -> None:
    """Merge-patch status.drift and the DriftDetected condition, retrying on a stale version."""
    from modelpilot.kube import apply as kube_apply

    current = md
    for _attempt in range(5):
        previous = (current.get("status") or {}).get("conditions") or []
        patch: dict[str, Any] = {
            "conditions": status.build_conditions(
                previous,
                status=condition[0],
                reason=condition[1],
                message=condition[2],
                now=now,
                generation=current["metadata"].get("generation"),
            )
        }
        if drift is not None:
            patch["drift"] = drift
        body = {
            "metadata": {"resourceVersion": current["metadata"]["resourceVersion"]},
            "status": patch,
        }
        path = kube_apply.path(
            API_VERSION, KIND, namespace=options.namespace, name=options.deployment
        )
        try:
            kube_apply.request(
                "PATCH", path + "/status", body=body, content_type="application/merge-patch+json"
            )
            return
        except kube_apply.ConflictError:
            current = _read_deployment(options)  # someone else wrote status: re-read and redo
        except kube_apply.KubeError as exc:
            raise JobFailedError(
                f"writing status of {options.namespace}/{options.deployment}: {exc}"
            ) from exc
    raise JobFailedError(
        f"writing status of {options.namespace}/{options.deployment}: kept conflicting"
    )


def _emit_event(md: dict[str, Any], *, reason: str, message: str, warning: bool, now: str) -> None:
    from modelpilot.kube import apply as kube_apply

    event = status.build_event(
        deployment=md,
        reason=reason,
        message=message,
        event_type="Warning" if warning else "Normal",
        now=now,
        name_suffix=f"{time.time_ns():x}",
    )
    try:
        kube_apply.request(
            "POST",
            kube_apply.path("v1", "Event", namespace=md["metadata"]["namespace"]),
            body=event,
        )
    except kube_apply.KubeError as exc:
        log.warning("could not emit the %s event: %s", reason, exc)


def _push(
    options: Options,
    report: drift_stats.DriftReport | None,
    collected: collect.Collected | None = None,
) -> None:
    import prometheus_client

    registry = prometheus_client.CollectorRegistry()
    labels = ["namespace", "deployment"]
    base = (options.namespace, options.deployment)
    if collected is not None:
        skipped = prometheus_client.Gauge(
            "modelpilot_drift_windows_skipped",
            "Model-server windows skipped in the last run, by reason.",
            [*labels, "reason"],
            registry=registry,
        )
        for reason in collect.SKIP_REASONS:
            skipped.labels(*base, reason).set(collected.reasons.get(reason, 0))
        prometheus_client.Gauge(
            "modelpilot_drift_windows_used",
            "Windows merged in the last run (one per model-server process).",
            labels,
            registry=registry,
        ).labels(*base).set(len(collected.accepted))
    if report is None:
        _send(options, registry)
        return
    for metric, values in status.build_gauges(report).items():
        gauge = prometheus_client.Gauge(
            metric, metric.replace("_", " "), [*labels, "feature"], registry=registry
        )
        for feature, value in values.items():
            gauge.labels(*base, feature).set(value)
    prometheus_client.Gauge(
        "modelpilot_drift_drifted_features",
        "Features flagged as drifted.",
        labels,
        registry=registry,
    ).labels(*base).set(len(report.drifted_features))
    prometheus_client.Gauge(
        "modelpilot_drift_last_run_timestamp_seconds",
        "End of the last drift run.",
        labels,
        registry=registry,
    ).labels(*base).set(time.time())
    _send(options, registry)


def _send(options: Options, registry: Any) -> None:
    import prometheus_client

    if options.pushgateway is None:
        raise ValueError("no pushgateway to push to")  # the caller checks; a bug otherwise
    try:
        prometheus_client.push_to_gateway(
            options.pushgateway,
            job=PUSH_JOB,
            registry=registry,
            grouping_key={"namespace": options.namespace, "deployment": options.deployment},
            timeout=10,
        )
    except OSError as exc:
        log.warning("could not push to %s: %s", options.pushgateway, exc)


def run(options: Options) -> Outcome:
    from modelpilot.registry import client as registry_client
    from modelpilot.registry import profiles

    now = _now()
    md = _read_deployment(options) if (options.write_status or options.model is None) else None
    name, version = _served_model(md, options)
    thresholds = _thresholds(md, options)
    client = registry_client.make_client(options.tracking_uri)
    reference = profiles.load_reference_profile(client, name=name, version=version)
    urls = list(options.window_urls) or collect.pod_urls(
        namespace=options.namespace, deployment=options.deployment
    )
    collected = collect.collect_windows(
        urls,
        profile=reference,
        model_version=version,
        timeout=options.timeout_seconds,
        max_bytes=options.max_window_bytes,
    )
    if options.persisted:
        persisted.collect_persisted(
            client,
            name=name,
            version=version,
            namespace=options.namespace,
            deployment=options.deployment,
            fingerprint=reference.fingerprint(),
            collected=collected,
            now=time.time(),
            max_bytes=options.max_window_bytes,
        )
    if not collected.accepted:
        message = f"no drift window collected from {len(urls)} model server(s) or MLflow" + (
            f": {'; '.join(f'{u}: {w}' for u, w in collected.skipped.items())}"
            if collected.skipped
            else ""
        )
        if md is not None and options.write_status:
            _write_status(
                options, md, drift=None, condition=("Unknown", "NoWindows", message), now=now
            )
        if options.pushgateway:
            _push(options, None, collected)
        raise JobFailedError(message)
    sketches = collected.sketches
    merged = profile_mod.merge_all(sketches)
    if merged.row_count == 0:
        message = f"no traffic since the model servers started ({len(sketches)} window(s))"
        if md is not None and options.write_status:
            _write_status(
                options, md, drift=None, condition=("Unknown", "NoTraffic", message), now=now
            )
        if options.pushgateway:
            _push(options, None, collected)
        return Outcome(
            summary={"lastRun": now, "message": message, "rows": 0},
            report=None,
            sources=collected.sources,
            skipped=collected.skipped,
            duplicates=collected.duplicates,
            persisted=collected.persisted,
        )
    report = drift_stats.compare(reference, merged, **thresholds)
    summary = status.build_drift_summary(
        report, now=now, model_version=version, windows=len(sketches)
    )
    condition = status.condition_for(report)
    if md is not None and options.write_status:
        _write_status(
            options, md, drift=status.build_status_drift(summary), condition=condition, now=now
        )
        _emit_event(
            md, reason=condition[1], message=condition[2], warning=condition[0] == "True", now=now
        )
    if options.pushgateway:
        _push(options, report, collected)
    return Outcome(
        summary=summary,
        report=report,
        sources=collected.sources,
        skipped=collected.skipped,
        duplicates=collected.duplicates,
        persisted=collected.persisted,
    )

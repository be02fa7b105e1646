"""Build what the drift job writes: `status.drift`, the DriftDetected condition, an Event, gauges.

Pure. Design decision: the condition follows the cert-manager convention (type, status, reason,
message, lastTransitionTime, observedGeneration) and `lastTransitionTime` moves only when the status
flips, so `kubectl wait --for=condition=DriftDetected` and alerting on transitions behave; the other
conditions in the list are carried over untouched (a merge patch replaces the list whole). The rule
is `api.conditions.set_condition`'s, the one both controllers use; not restated here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from modelpilot.api import conditions, constants
from modelpilot.stats import drift as drift_stats

CONDITION = "DriftDetected"


def build_drift_summary(
    report: drift_stats.DriftReport, *, now: str, model_version: str, windows: int
) -> dict[str, Any]:
    """`status.drift`: what DESIGN.md names (lastRun, maxPsi, driftedFeatures) plus per-feature."""
    return {
        "lastRun": now,
        "modelVersion": model_version,
        "maxPsi": round(report.max_psi, 6),
        "driftedFeatures": report.drifted_features,
        "rows": report.current_rows,
        "windows": windows,
        "features": [
            {
                "name": f.name,
                "psi": round(f.psi, 6),
                "ksStatistic": None if f.ks_statistic is None else round(f.ks_statistic, 6),
                "ksPValue": f.ks_pvalue_adjusted
                if f.ks_pvalue_adjusted is not None
                else f.ks_pvalue,
                "jsDistance": round(f.js_distance, 6),
                "nullRateDelta": round(f.null_rate_delta, 6),
                "drifted": f.drifted,
            }
            for f in report.features
        ],
    }


# The fields of status.drift in the ModelDeployment CRD (modelpilot.api.modeldeployment); the API
# server prunes anything else, so the per-feature detail goes to the Event, the gauges and stdout.
STATUS_FIELDS = ("lastRun", "maxPsi", "driftedFeatures")


def build_status_drift(summary: dict[str, Any]) -> dict[str, Any]:
    """The part of the summary that `status.drift` holds."""
    return {key: summary[key] for key in STATUS_FIELDS}


def build_conditions(
    previous: Sequence[Mapping[str, Any]],
    *,
    status: conditions.Status,
    reason: str,
    message: str,
    now: str,
    generation: int | None,
) -> list[conditions.Condition]:
    """`previous` with DriftDetected set by the one condition rule of `api.conditions` (its
    lastTransitionTime stays unless the status flips; every other condition is kept as it was)."""
    return conditions.set_condition(
        previous,
        type_=CONDITION,
        status=status,
        reason=reason,
        message=message[:1024],
        now=conditions.parse_timestamp(now),
        generation=generation,
    )


def condition_for(report: drift_stats.DriftReport) -> tuple[conditions.Status, str, str]:
    """(status, reason, message) of DriftDetected for a finished comparison."""
    drifted = report.drifted_features
    if drifted:
        details = ", ".join(
            f"{f.name} (psi {f.psi:.3f}"
            + ("" if f.ks_statistic is None else f", ks {f.ks_statistic:.3f}")
            + ")"
            for f in report.features
            if f.drifted
        )
        return "True", "DriftDetected", f"{len(drifted)} feature(s) drifted: {details}"
    return "False", "NoDrift", f"no feature drifted (max PSI {report.max_psi:.3f})"


def build_event(
    *,
    deployment: Mapping[str, Any],
    reason: str,
    message: str,
    event_type: str,
    now: str,
    name_suffix: str,
) -> dict[str, Any]:
    """A core/v1 Event about the ModelDeployment (what `kubectl describe` shows)."""
    meta = deployment["metadata"]
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {
            "name": f"{meta['name']}.drift.{name_suffix}",
            "namespace": meta["namespace"],
        },
        "involvedObject": {
            "apiVersion": deployment.get("apiVersion", constants.API_VERSION),
            "kind": deployment.get("kind", "ModelDeployment"),
            "name": meta["name"],
            "namespace": meta["namespace"],
            "uid": meta.get("uid"),
        },
        "reason": reason,
        "message": message[:1024],
        "type": event_type,
        "source": {"component": "modelpilot-drift"},
        "reportingComponent": "modelpilot-drift",
        "reportingInstance": "modelpilot-drift",
        "firstTimestamp": now,
        "lastTimestamp": now,
        "count": 1,
    }


def build_gauges(report: drift_stats.DriftReport) -> dict[str, dict[str, float]]:
    """Per-feature gauge values keyed by metric name (docs/architecture.md, drift job)."""
    out: dict[str, dict[str, float]] = {
        "modelpilot_drift_psi": {},
        "modelpilot_drift_ks_statistic": {},
        "modelpilot_drift_ks_pvalue": {},
        "modelpilot_drift_js_distance": {},
        "modelpilot_drift_null_rate_delta": {},
    }
    for f in report.features:
        out["modelpilot_drift_psi"][f.name] = f.psi
        out["modelpilot_drift_js_distance"][f.name] = f.js_distance
        out["modelpilot_drift_null_rate_delta"][f.name] = f.null_rate_delta
        if f.ks_statistic is not None:
            out["modelpilot_drift_ks_statistic"][f.name] = f.ks_statistic
            p = f.ks_pvalue_adjusted if f.ks_pvalue_adjusted is not None else f.ks_pvalue
            if p is not None:
                out["modelpilot_drift_ks_pvalue"][f.name] = p
    return out

"""Conditions keep lastTransitionTime across refreshes; readiness and history follow Kubernetes."""

from __future__ import annotations

import datetime as dt
from typing import Any

from modelpilot.operator import conditions, mdstatus

T0 = dt.datetime(2026, 1, 1, 12, 0, 0, tzinfo=dt.UTC)
T1 = T0 + dt.timedelta(minutes=5)


def test_last_transition_time_changes_only_when_the_status_flips() -> None:
    first = conditions.set_condition(
        [], type_="Ready", status="False", reason="RollingOut", message="a", generation=1, now=T0
    )
    refreshed = conditions.set_condition(
        first, type_="Ready", status="False", reason="Other", message="b", generation=2, now=T1
    )
    (ready,) = refreshed
    assert ready["lastTransitionTime"] == "2026-01-01T12:00:00Z"
    assert (ready["reason"], ready["message"], ready["observedGeneration"]) == ("Other", "b", 2)
    flipped = conditions.set_condition(
        refreshed,
        type_="Ready",
        status="True",
        reason="Available",
        message="c",
        generation=2,
        now=T1,
    )
    assert flipped[0]["lastTransitionTime"] == "2026-01-01T12:05:00Z"


def test_conditions_are_one_per_type_in_a_stable_order() -> None:
    out: list[conditions.Condition] = []
    for type_ in ["DriftDetected", "Degraded", "Ready", "Progressing", "Ready"]:
        out = conditions.set_condition(
            out, type_=type_, status="True", reason="R", message="", generation=None, now=T0
        )
    assert [c["type"] for c in out] == ["Ready", "Progressing", "Degraded", "DriftDetected"]
    assert "observedGeneration" not in out[0]


def deployment(**status: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": "iris-stable", "generation": 2},
        "spec": {"replicas": 2},
        "status": {"observedGeneration": 2, **status},
    }


def test_a_deployment_is_ready_only_when_every_replica_is_updated_and_available() -> None:
    assert mdstatus.deployment_readiness(
        deployment(replicas=2, updatedReplicas=2, availableReplicas=2)
    ) == (True, "iris-stable: 2 of 2 replicas available")
    assert not mdstatus.deployment_readiness(deployment(replicas=2, updatedReplicas=1))[0]
    assert not mdstatus.deployment_readiness(
        deployment(replicas=3, updatedReplicas=2, availableReplicas=2)
    )[0]  # an old pod still running
    assert not mdstatus.deployment_readiness(
        deployment(replicas=2, updatedReplicas=2, availableReplicas=1)
    )[0]
    stale = deployment(replicas=2, updatedReplicas=2, availableReplicas=2)
    stale["status"]["observedGeneration"] = 1
    ok, why = mdstatus.deployment_readiness(stale)
    assert not ok
    assert "not yet observed" in why


def test_zero_replicas_is_ready_and_missing_deployments_are_not() -> None:
    zero = {
        "metadata": {"name": "x", "generation": 1},
        "spec": {"replicas": 0},
        "status": {"observedGeneration": 1},
    }
    assert mdstatus.deployment_readiness(zero)[0]
    ok, why = mdstatus.workloads_readiness([zero], expected=2)
    assert not ok
    assert why == "1 of 2 Deployments exist"


def test_history_closes_the_previous_version_when_a_new_one_serves() -> None:
    first = mdstatus.next_history([], version="1", now=T0, reason="initial deployment")
    assert first == [
        {"version": "1", "from": "2026-01-01T12:00:00Z", "reason": "initial deployment"}
    ]
    assert mdstatus.next_history(first, version="1", now=T1, reason="x") == first
    second = mdstatus.next_history(first, version="2", now=T1, reason="alias champion moved")
    assert second == [
        {
            "version": "1",
            "from": "2026-01-01T12:00:00Z",
            "to": "2026-01-01T12:05:00Z",
            "reason": "initial deployment",
        },
        {"version": "2", "from": "2026-01-01T12:05:00Z", "reason": "alias champion moved"},
    ]


def test_history_is_bounded() -> None:
    history: list[dict[str, Any]] = []
    for i in range(mdstatus.HISTORY_LIMIT + 10):
        history = mdstatus.next_history(history, version=str(i + 1), now=T0, reason="r")
    assert len(history) == mdstatus.HISTORY_LIMIT
    assert history[-1]["version"] == str(mdstatus.HISTORY_LIMIT + 10)


def test_degraded_keeps_ready_true_while_the_old_version_still_serves() -> None:
    served = mdstatus.served_conditions(
        [], ready=True, message="ok", drift_enabled=False, generation=1, now=T0
    )
    degraded = mdstatus.degraded_conditions(
        served, reason="RegistryUnavailable", message="down", generation=1, now=T1
    )
    assert conditions.is_true(degraded, "Ready")
    assert conditions.is_true(degraded, "Degraded")
    fresh = mdstatus.degraded_conditions(
        [], reason="ModelNotFound", message="no such alias", generation=1, now=T0
    )
    ready = conditions.find(fresh, "Ready")
    assert ready is not None
    assert (ready["status"], ready["reason"]) == ("False", "ModelNotFound")


def test_drift_condition_awaits_the_first_run_once_drift_is_enabled() -> None:
    off = mdstatus.served_conditions(
        [], ready=True, message="", drift_enabled=False, generation=1, now=T0
    )
    drift = conditions.find(off, "DriftDetected")
    assert drift is not None
    assert drift["reason"] == "DriftNotMonitored"
    on = mdstatus.served_conditions(
        off, ready=True, message="", drift_enabled=True, generation=2, now=T1
    )
    drift = conditions.find(on, "DriftDetected")
    assert drift is not None
    assert (drift["status"], drift["reason"]) == (
        "Unknown",
        "AwaitingFirstRun",
    )
    reported = conditions.set_condition(
        on,
        type_="DriftDetected",
        status="True",
        reason="PsiAboveThreshold",
        message="x",
        generation=2,
        now=T1,
    )
    kept = mdstatus.served_conditions(
        reported, ready=True, message="", drift_enabled=True, generation=2, now=T1
    )
    drift = conditions.find(kept, "DriftDetected")
    assert drift is not None
    assert drift["reason"] == "PsiAboveThreshold"

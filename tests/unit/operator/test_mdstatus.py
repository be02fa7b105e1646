"""ModelDeployment status pieces: bounded history reasons and why a rollout cannot finish."""

from __future__ import annotations

import datetime as dt
from typing import Any

from modelpilot.api import modeldeployment as md_api
from modelpilot.operator import conditions, mdstatus

T0 = dt.datetime(2026, 1, 1, 12, 0, 0, tzinfo=dt.UTC)


def _history_reason_max_length() -> int:
    schema: Any = md_api.build_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    entry = schema["properties"]["status"]["properties"]["history"]["items"]
    return int(entry["properties"]["reason"]["maxLength"])


def test_a_history_reason_is_cut_to_the_crd_limit_with_an_ellipsis() -> None:
    assert mdstatus.HISTORY_REASON_MAX == _history_reason_max_length()
    history = mdstatus.next_history([], version="2", now=T0, reason="x" * 1000)
    reason = history[-1]["reason"]
    assert len(reason) == mdstatus.HISTORY_REASON_MAX
    assert reason.endswith("\u2026") and reason.startswith("x" * 255)
    short = mdstatus.next_history([], version="2", now=T0, reason="promoted")
    assert short[-1]["reason"] == "promoted"


def _pod(name: str, **status: Any) -> dict[str, Any]:
    return {"metadata": {"name": name}, "status": status}


def test_an_unschedulable_pod_gives_the_schedulers_message() -> None:
    pending = _pod(
        "iris-stable-1",
        conditions=[
            {
                "type": "PodScheduled",
                "status": "False",
                "reason": "Unschedulable",
                "message": "0/1 nodes are available: 1 Insufficient cpu.",
            }
        ],
    )
    assert mdstatus.pod_failure_reason([pending]) == (
        "Unschedulable",
        "pod iris-stable-1: 0/1 nodes are available: 1 Insufficient cpu.",
    )


def test_image_pull_and_crash_loops_are_failures_but_a_starting_container_is_not() -> None:
    def waiting(reason: str, message: str = "") -> dict[str, Any]:
        state = {"waiting": {"reason": reason, "message": message}}
        return _pod("p", containerStatuses=[{"name": "model-server", "state": state}])

    assert mdstatus.pod_failure_reason([waiting("ImagePullBackOff", "pull denied")]) == (
        "ImagePullBackOff",
        "pod p container model-server: ImagePullBackOff: pull denied",
    )
    assert mdstatus.pod_failure_reason([waiting("CrashLoopBackOff")])[0] == "CrashLoopBackOff"  # type: ignore[index]
    assert mdstatus.pod_failure_reason([waiting("ContainerCreating")]) is None
    assert mdstatus.pod_failure_reason([]) is None


def test_ready_says_why_a_rollout_is_stuck_and_progressing_keeps_the_rollout_message() -> None:
    out = mdstatus.rollout_conditions(
        [],
        ready=False,
        message="iris-stable: 0 of 1 updated replicas available",
        generation=3,
        now=T0,
        failure=("Unschedulable", "pod p: 0/1 nodes are available"),
    )
    ready = conditions.find(out, conditions.READY)
    progressing = conditions.find(out, conditions.PROGRESSING)
    assert ready is not None and progressing is not None
    assert (ready["reason"], ready["observedGeneration"]) == ("Unschedulable", 3)
    assert ready["message"].startswith("pod p: 0/1 nodes are available")
    assert progressing["message"] == "iris-stable: 0 of 1 updated replicas available"
    assert "Unschedulable" in mdstatus.NEEDS_ACTION and "RollingOut" not in mdstatus.NEEDS_ACTION

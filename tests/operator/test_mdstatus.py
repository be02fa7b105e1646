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
    assert _history_reason_max_length() == mdstatus.HISTORY_REASON_MAX
    history = mdstatus.next_history([], version="2", now=T0, reason="x" * 1000)
    reason = history[-1]["reason"]
    assert len(reason) == mdstatus.HISTORY_REASON_MAX
    assert reason.endswith("\u2026")
    assert reason.startswith("x" * 255)
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
    assert ready is not None
    assert progressing is not None
    assert (ready["reason"], ready["observedGeneration"]) == ("Unschedulable", 3)
    assert ready["message"].startswith("pod p: 0/1 nodes are available")
    assert progressing["message"] == "iris-stable: 0 of 1 updated replicas available"
    assert "Unschedulable" in mdstatus.NEEDS_ACTION
    assert "RollingOut" not in mdstatus.NEEDS_ACTION


def _container(name: str, *, state: dict[str, Any], last: dict[str, Any] | None = None) -> Any:
    status: dict[str, Any] = {"name": name, "state": state, "restartCount": 3}
    if last is not None:
        status["lastState"] = {"terminated": last}
    return status


def test_a_crash_loop_of_an_oom_killed_container_is_reported_as_oomkilled_with_its_exit() -> None:
    pod = _pod(
        "iris-stable-7",
        containerStatuses=[
            _container(
                "model-server",
                state={"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 40s"}},
                last={"reason": "OOMKilled", "exitCode": 137},
            )
        ],
    )
    assert mdstatus.pod_failure_reason([pod]) == (
        "OOMKilled",
        "pod iris-stable-7 container model-server: OOMKilled: back-off 40s "
        "(last exit: OOMKilled, code 137)",
    )
    assert "OOMKilled" in mdstatus.NEEDS_ACTION  # a Warning Event, not a routine one


def test_a_container_just_oom_killed_is_a_failure_before_its_back_off_starts() -> None:
    pod = _pod(
        "p",
        containerStatuses=[
            _container("router", state={"terminated": {"reason": "OOMKilled", "exitCode": 137}})
        ],
    )
    assert mdstatus.pod_failure_reason([pod]) == (
        "OOMKilled",
        "pod p container router: OOMKilled (last exit: OOMKilled, code 137)",
    )


def test_a_crash_loop_says_how_the_container_last_exited() -> None:
    pod = _pod(
        "p",
        containerStatuses=[
            _container(
                "model-server",
                state={"waiting": {"reason": "CrashLoopBackOff"}},
                last={"reason": "Error", "exitCode": 2, "message": "bad MODELPILOT_SERVER_PORT\n"},
            )
        ],
    )
    assert mdstatus.pod_failure_reason([pod]) == (
        "CrashLoopBackOff",
        "pod p container model-server: CrashLoopBackOff "
        "(last exit: Error, code 2: bad MODELPILOT_SERVER_PORT)",
    )

"""The ModelDeployment's status as pure functions: readiness, conditions, history.

Design decision: readiness is read from the Deployments' own status as Kubernetes' rollout logic
defines it (`kubectl rollout status`: observedGeneration caught up, every replica updated and
available, no old replica left), so Ready=True means the new version serves, not merely that
objects exist. The caller passes the clock; nothing here does input/output.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Mapping, Sequence
from typing import Any

from modelpilot.operator import conditions

HISTORY_LIMIT = 100
HISTORY_REASON_MAX = 256
"""`status.history[].reason` is at most this long: the CRD's `maxLength` (modelpilot.api), so a
longer change-reason is cut here, never refused by the API server (which would stall the status)."""
ELLIPSIS = "\u2026"


def truncate(text: str, limit: int) -> str:
    """`text` cut to at most `limit` characters, the cut marked by an ellipsis."""
    return text if len(text) <= limit else text[: limit - 1] + ELLIPSIS


# Container waiting reasons that a person must act on (the kubelet's own reason strings).
_STUCK_WAITING_REASONS = frozenset(
    {
        "ErrImagePull",
        "ErrImageNeverPull",  # imagePullPolicy Never and the image is not on the node
        "ImagePullBackOff",
        "InvalidImageName",
        "CrashLoopBackOff",
        "CreateContainerConfigError",
        "CreateContainerError",
        "RunContainerError",
    }
)


def deployment_readiness(deployment: Mapping[str, Any]) -> tuple[bool, str]:
    """(ready, why) for one Deployment, as `kubectl rollout status` judges it."""
    name = deployment.get("metadata", {}).get("name", "?")
    spec_replicas = int(deployment.get("spec", {}).get("replicas", 1))
    status = deployment.get("status") or {}
    generation = int(deployment.get("metadata", {}).get("generation", 0))
    if int(status.get("observedGeneration", 0)) < generation:
        return False, f"{name}: rollout not yet observed"
    updated = int(status.get("updatedReplicas", 0))
    total = int(status.get("replicas", 0))
    available = int(status.get("availableReplicas", 0))
    if updated < spec_replicas:
        return False, f"{name}: {updated} of {spec_replicas} replicas updated"
    if total > updated:
        return False, f"{name}: {total - updated} old replicas pending termination"
    if available < updated:
        return False, f"{name}: {available} of {updated} updated replicas available"
    return True, f"{name}: {available} of {spec_replicas} replicas available"


def workloads_readiness(
    deployments: Sequence[Mapping[str, Any]], *, expected: int
) -> tuple[bool, str]:
    """All `expected` Deployments present and ready; the message lists what is missing."""
    if len(deployments) < expected:
        return False, f"{len(deployments)} of {expected} Deployments exist"
    verdicts = [deployment_readiness(d) for d in deployments]
    waiting = [why for ok, why in verdicts if not ok]
    if waiting:
        return False, "; ".join(waiting)
    return True, "all replicas available"


def next_history(
    history: Sequence[Mapping[str, Any]], *, version: str, now: dt.datetime, reason: str
) -> list[dict[str, Any]]:
    """Close the open entry and open one for `version` if it changed; unchanged otherwise."""
    out = [dict(entry) for entry in history]
    current = out[-1] if out and "to" not in out[-1] else None
    if current is not None and current.get("version") == version:
        return out
    stamp = conditions.timestamp(now)
    if current is not None:
        current["to"] = stamp
    out.append({"version": version, "from": stamp, "reason": truncate(reason, HISTORY_REASON_MAX)})
    return out[-HISTORY_LIMIT:]


def rollout_conditions(
    existing: list[conditions.Condition],
    *,
    ready: bool,
    message: str,
    generation: int,
    now: dt.datetime,
    failure: tuple[str, str] | None = None,
) -> list[conditions.Condition]:
    """Ready and Progressing from the Deployments' readiness (`workloads_readiness`).

    `failure` is `pod_failure_reason` of the pods: when set (and not ready), Ready's reason and
    message say why the rollout cannot finish by waiting (Unschedulable, ImagePullBackOff...).
    """
    set_ = functools.partial(conditions.set_condition, generation=generation, now=now)
    reason = "Available" if ready else "RollingOut"
    ready_message = message
    if not ready and failure is not None:
        reason, ready_message = failure[0], f"{failure[1]} ({message})"
    out = set_(
        existing,
        type_=conditions.READY,
        status="True" if ready else "False",
        reason=reason,
        message=ready_message,
    )
    return set_(
        out,
        type_=conditions.PROGRESSING,
        status="False" if ready else "True",
        reason="RolloutComplete" if ready else "RollingOut",
        message=message,
    )


NEEDS_ACTION = frozenset({"Unschedulable", "OOMKilled", *_STUCK_WAITING_REASONS})
"""Ready=False reasons that a person must act on: the only ones worth a Warning Event."""


def served_conditions(
    existing: list[conditions.Condition],
    *,
    ready: bool,
    message: str,
    drift_enabled: bool,
    generation: int,
    now: dt.datetime,
    failure: tuple[str, str] | None = None,
) -> list[conditions.Condition]:
    """Conditions after a successful apply: Ready/Progressing from readiness, Degraded False."""
    set_ = functools.partial(conditions.set_condition, generation=generation, now=now)
    out = rollout_conditions(
        existing, ready=ready, message=message, generation=generation, now=now, failure=failure
    )
    out = set_(
        out,
        type_=conditions.DEGRADED,
        status="False",
        reason="AsExpected",
        message="model resolved and objects applied",
    )
    drift = conditions.find(out, conditions.DRIFT_DETECTED)
    if not drift_enabled:
        out = set_(
            out,
            type_=conditions.DRIFT_DETECTED,
            status="False",
            reason="DriftNotMonitored",
            message="spec.drift is not set",
        )
    elif drift is None or drift.get("reason") == "DriftNotMonitored":
        out = set_(
            out,
            type_=conditions.DRIFT_DETECTED,
            status="Unknown",
            reason="AwaitingFirstRun",
            message="the drift job has not reported yet",
        )
    return out


def degraded_conditions(
    existing: list[conditions.Condition],
    *,
    reason: str,
    message: str,
    generation: int,
    now: dt.datetime,
) -> list[conditions.Condition]:
    """Degraded=True with `reason`; Ready=False only if nothing serves yet (no Ready condition)."""
    set_ = functools.partial(
        conditions.set_condition, reason=reason, message=message, generation=generation, now=now
    )
    out = set_(existing, type_=conditions.DEGRADED, status="True")
    if not conditions.is_true(out, conditions.READY):
        out = set_(out, type_=conditions.READY, status="False")
    return out


def _last_exit(container: Mapping[str, Any]) -> Mapping[str, Any]:
    """The container's last termination (`lastState.terminated`), or {} if it never ended."""
    return ((container.get("lastState") or {}).get("terminated")) or {}


def _exit_text(terminated: Mapping[str, Any]) -> str:
    """ "last exit: OOMKilled, code 137: <termination message>" (the kubelet's own fields)."""
    text = (
        f"last exit: {terminated.get('reason') or 'Error'}, code {terminated.get('exitCode', '?')}"
    )
    message = str(terminated.get("message") or "").strip()
    return text + (f": {truncate(message, 200)}" if message else "")


def pod_failure_reason(pods: Sequence[Mapping[str, Any]]) -> tuple[str, str] | None:
    """(reason, message) of the first pod that cannot become ready by waiting, else None.

    The reasons are the ones `kubectl get pods` shows: the scheduler's PodScheduled=False
    `Unschedulable` (with its message, e.g. "0/3 nodes are available: 3 Insufficient cpu"), or a
    container waiting in `ImagePullBackOff`, `CrashLoopBackOff` and the like. A crash loop says
    how the container last ended (exit code, termination message), and one whose container was
    killed for exceeding its memory limit is reported as `OOMKilled`, the kubelet's reason in
    `lastState.terminated` (a crash loop's waiting reason alone would hide it); so is a container
    that has just been OOM-killed and not yet restarted. A pod still being created or started is
    not a failure.
    """
    for pod in sorted(pods, key=lambda p: str((p.get("metadata") or {}).get("name", ""))):
        name = (pod.get("metadata") or {}).get("name", "?")
        status = pod.get("status") or {}
        for cond in status.get("conditions") or []:
            if (
                cond.get("type") == "PodScheduled"
                and cond.get("status") == "False"
                and cond.get("reason") == "Unschedulable"
            ):
                return "Unschedulable", f"pod {name}: {cond.get('message') or 'unschedulable'}"
        for container in status.get("containerStatuses") or []:
            state = container.get("state") or {}
            waiting = state.get("waiting") or {}
            terminated = state.get("terminated") or {}
            where = f"pod {name} container {container.get('name', '?')}"
            if terminated.get("reason") == "OOMKilled":
                return "OOMKilled", f"{where}: OOMKilled ({_exit_text(terminated)})"
            reason = waiting.get("reason")
            if reason not in _STUCK_WAITING_REASONS:
                continue
            last = _last_exit(container)
            if reason == "CrashLoopBackOff" and last.get("reason") == "OOMKilled":
                reason = "OOMKilled"
            text = f"{where}: {reason}"
            detail = waiting.get("message") or ""
            if detail:
                text += f": {detail}"
            if last:
                text += f" ({_exit_text(last)})"
            return str(reason), text
    return None

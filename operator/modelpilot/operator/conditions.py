"""Status conditions (type, status, reason, message, lastTransitionTime, observedGeneration).

The cert-manager / KEP-1623 `metav1.Condition` convention: one entry per type, and
`lastTransitionTime` changes only when `status` flips, so "Ready since" stays meaningful when the
reason or message is refreshed. Pure: the caller passes the clock.
"""

from __future__ import annotations

import datetime as dt
from typing import Literal, NotRequired, TypedDict

Status = Literal["True", "False", "Unknown"]

READY = "Ready"
PROGRESSING = "Progressing"
DEGRADED = "Degraded"
DRIFT_DETECTED = "DriftDetected"


class Condition(TypedDict):
    type: str
    status: Status
    reason: str
    message: str
    lastTransitionTime: str
    observedGeneration: NotRequired[int]


def timestamp(now: dt.datetime) -> str:
    """RFC 3339 in UTC with a `Z`, second precision (what the API server stores)."""
    return now.astimezone(dt.UTC).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def set_condition(
    conditions: list[Condition],
    *,
    type_: str,
    status: Status,
    reason: str,
    message: str,
    generation: int | None,
    now: dt.datetime,
) -> list[Condition]:
    """A new list with `type_` set; lastTransitionTime kept unless the status flips."""
    previous = find(conditions, type_)
    transition = (
        previous["lastTransitionTime"]
        if previous is not None
        and previous["status"] == status
        and previous.get("lastTransitionTime")
        else timestamp(now)
    )
    updated: Condition = {
        "type": type_,
        "status": status,
        "reason": reason,
        "message": message,
        "lastTransitionTime": transition,
    }
    if generation is not None:
        updated["observedGeneration"] = generation
    out = [c for c in conditions if c["type"] != type_]
    out.append(updated)
    return sorted(out, key=lambda c: _ORDER.get(c["type"], len(_ORDER)))


_ORDER = {READY: 0, PROGRESSING: 1, DEGRADED: 2, DRIFT_DETECTED: 3}


def find(conditions: list[Condition], type_: str) -> Condition | None:
    for condition in conditions:
        if condition["type"] == type_:
            return condition
    return None


def is_true(conditions: list[Condition], type_: str) -> bool:
    found = find(conditions, type_)
    return found is not None and found["status"] == "True"

"""`status.conditions` of both kinds (metav1.Condition), and the one timestamp format of the API.

The cert-manager / KEP-1623 convention: one entry per type with status, reason, message,
lastTransitionTime and observedGeneration. The one rule: `lastTransitionTime` moves only when a
condition's `status` flips, so "Ready since" stays meaningful when the reason or message is
refreshed, and re-running an update with the same outcome leaves the conditions byte-identical
(what keeps the experiment decision idempotent). Both the ModelDeployment and the Experiment
controllers set conditions through `set_condition`; nothing else writes them.

Times are RFC 3339 in UTC with a `Z`, to the second (`2026-01-02T03:04:05Z`), as the API server
stores metav1.Time: `timestamp` writes them and `parse_timestamp` reads them back, for conditions,
`startTime`, `decision.time`, the history and the drift job's `lastRun` alike. Pure: the caller
passes the clock.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any, Literal, NotRequired, TypedDict, cast

Status = Literal["True", "False", "Unknown"]

TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


class Condition(TypedDict):
    type: str
    status: Status
    reason: str
    message: str
    lastTransitionTime: str
    observedGeneration: NotRequired[int]


def timestamp(now: dt.datetime) -> str:
    """RFC 3339 in UTC with a `Z`, second precision (what the API server stores)."""
    return now.astimezone(dt.UTC).replace(microsecond=0).strftime(TIME_FORMAT)


def parse_timestamp(text: str) -> dt.datetime:
    """The aware UTC datetime of a `timestamp` string."""
    return dt.datetime.strptime(text, TIME_FORMAT).replace(tzinfo=dt.UTC)


def _status(value: Status | bool) -> Status:
    if isinstance(value, bool):
        return "True" if value else "False"
    return value


def set_condition(
    conditions: Sequence[Mapping[str, Any]],
    *,
    type_: str,
    status: Status | bool,
    reason: str,
    message: str,
    now: dt.datetime,
    generation: int | None = None,
    order: Sequence[str] | None = None,
) -> list[Condition]:
    """A new list with `type_` set; lastTransitionTime kept unless the status flips.

    The other conditions are copied unchanged; a new type is appended. With `order` the list is
    sorted by it (types not in it last, in their order), so a kind can keep Ready first.
    """
    wanted = _status(status)
    updated: Condition = {
        "type": type_,
        "status": wanted,
        "reason": reason,
        "message": message,
        "lastTransitionTime": timestamp(now),
    }
    if generation is not None:
        updated["observedGeneration"] = generation
    out: list[Condition] = []
    found = False
    for cond in conditions:
        if cond.get("type") != type_:
            out.append(cast(Condition, dict(cond)))
            continue
        found = True
        if cond.get("status") == wanted and cond.get("lastTransitionTime"):
            updated["lastTransitionTime"] = str(cond["lastTransitionTime"])
        out.append(updated)
    if not found:
        out.append(updated)
    if order is not None:
        rank = {t: i for i, t in enumerate(order)}
        out.sort(key=lambda c: rank.get(c["type"], len(rank)))
    return out


def find(conditions: Sequence[Mapping[str, Any]], type_: str) -> Condition | None:
    for cond in conditions:
        if cond.get("type") == type_:
            return cast(Condition, cond)
    return None


def is_true(conditions: Sequence[Mapping[str, Any]], type_: str) -> bool:
    found = find(conditions, type_)
    return found is not None and found["status"] == "True"

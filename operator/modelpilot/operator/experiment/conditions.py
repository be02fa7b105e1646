"""`status.conditions` of an Experiment, kept the Kubernetes way (metav1.Condition).

The one rule that matters: `lastTransitionTime` changes only when a condition's `status` flips, so
re-running an update with the same outcome leaves the conditions byte-identical (the cert-manager
convention, and what keeps the decision idempotent).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

Condition = dict[str, Any]


def set_condition(
    conditions: Sequence[Mapping[str, Any]],
    *,
    type_: str,
    status: bool,
    reason: str,
    message: str,
    now: str,
) -> list[Condition]:
    """A new list with `type_` set; other conditions are kept in their order."""
    out: list[Condition] = []
    found = False
    wanted = "True" if status else "False"
    for cond in conditions:
        if cond.get("type") != type_:
            out.append(dict(cond))
            continue
        found = True
        flipped = cond.get("status") != wanted
        out.append(
            {
                "type": type_,
                "status": wanted,
                "reason": reason,
                "message": message,
                "lastTransitionTime": now if flipped else cond.get("lastTransitionTime", now),
            }
        )
    if not found:
        out.append(
            {
                "type": type_,
                "status": wanted,
                "reason": reason,
                "message": message,
                "lastTransitionTime": now,
            }
        )
    return out


def get(conditions: Sequence[Mapping[str, Any]], type_: str) -> Mapping[str, Any] | None:
    for cond in conditions:
        if cond.get("type") == type_:
            return cond
    return None

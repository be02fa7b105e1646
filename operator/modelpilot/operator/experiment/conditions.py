"""The Experiment's conditions, over the shared conditions of `modelpilot.api.conditions`.

The rule (lastTransitionTime moves only on a flip, so re-running an update with the same outcome
leaves the conditions byte-identical) and the timestamp format live in `modelpilot.api.conditions`,
shared with the ModelDeployment. This adapter keeps the Experiment's call shape: a boolean status
and `now` as an already formatted timestamp; the conditions keep their order.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from modelpilot.api import conditions as shared

Condition = shared.Condition


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
    return shared.set_condition(
        conditions,
        type_=type_,
        status=status,
        reason=reason,
        message=message,
        now=shared.parse_timestamp(now),
    )


def get(conditions: Sequence[Mapping[str, Any]], type_: str) -> Mapping[str, Any] | None:
    return shared.find(conditions, type_)

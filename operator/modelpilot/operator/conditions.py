"""The ModelDeployment's condition types, over the shared conditions of `modelpilot.api.conditions`.

The rule (lastTransitionTime moves only on a flip) and the timestamp format live in
`modelpilot.api.conditions`, shared with the Experiment; this module adds the ModelDeployment's
types and keeps them in a fixed order (Ready first). Pure: the caller passes the clock.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from modelpilot.api import conditions as shared

Status = shared.Status
Condition = shared.Condition

READY = "Ready"
PROGRESSING = "Progressing"
DEGRADED = "Degraded"
DRIFT_DETECTED = "DriftDetected"

ORDER = (READY, PROGRESSING, DEGRADED, DRIFT_DETECTED)

timestamp = shared.timestamp
find = shared.find
is_true = shared.is_true


def set_condition(
    conditions: Sequence[Condition] | Sequence[dict[str, Any]],
    *,
    type_: str,
    status: Status,
    reason: str,
    message: str,
    generation: int | None,
    now: dt.datetime,
) -> list[Condition]:
    """A new list with `type_` set (see `modelpilot.api.conditions.set_condition`), Ready first."""
    return shared.set_condition(
        conditions,
        type_=type_,
        status=status,
        reason=reason,
        message=message,
        now=now,
        generation=generation,
        order=ORDER,
    )

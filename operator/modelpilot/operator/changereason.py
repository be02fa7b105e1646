"""Why a ModelDeployment started serving a version: the change-reason annotation and the history.

The Experiment controller, when it promotes a winner, writes `{"version": v, "reason": why}` to the
ModelDeployment's `modelpilot.io/change-reason` annotation (`encode`) in the same merge patch that
points `spec.model` at version `v`; the ModelDeployment controller, when it rolls out `v`, copies
`why` into `status.history[].reason` (`history_reason`). The annotation names the version so a
stale note (an older promotion, then a manual edit) never explains a later change. Pure.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from modelpilot.api import constants

ANNOTATION = constants.ANNOTATION_CHANGE_REASON


def encode(*, version: str, reason: str) -> str:
    """The annotation's value: compact JSON of the version and the reason."""
    return json.dumps({"version": str(version), "reason": reason})


def reason_for(annotations: Mapping[str, str] | None, *, version: str) -> str | None:
    """The reason the annotation gives for `version`; None when absent, stale or malformed."""
    note = (annotations or {}).get(ANNOTATION)
    if not note:
        return None
    try:
        parsed = json.loads(note)
    except ValueError:
        return None
    if not isinstance(parsed, Mapping) or str(parsed.get("version")) != str(version):
        return None
    reason = parsed.get("reason")
    return str(reason) if reason else None


def history_reason(
    *,
    previous_version: str | None,
    version: str,
    reference: Mapping[str, Any],
    annotations: Mapping[str, str] | None,
    trigger: str,
) -> str:
    """Why `version` starts serving, for `status.history`, in this order of precedence: the first
    version; a reason an Experiment wrote for this version; an alias that moved on a resync; else
    an edit of `spec.model`."""
    if previous_version is None:
        return "initial deployment"
    noted = reason_for(annotations, version=version)
    if noted is not None:
        return noted
    if "alias" in reference and trigger == "resync":
        return f"alias {reference['alias']} moved"
    return "spec.model changed"

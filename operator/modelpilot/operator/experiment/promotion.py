"""The promotion of an Experiment's winner: the merge patch of its ModelDeployment, or nothing.

Idempotent by construction: `build_promotion_patch` returns None when the ModelDeployment already
serves the winner's model with this promotion's change reason, so re-running a terminal Promoted
update (after a crash, on every later loop) sends no request. The patch pins the version and removes
the alias (`alias: null` in a merge patch), because exactly one of the two may be set. Pure.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from modelpilot.operator import changereason


def build_promotion_patch(
    md: Mapping[str, Any], *, winner_model: Mapping[str, Any], reason: str
) -> dict[str, Any] | None:
    """The merge patch that points `md` at `winner_model`, or None when it already does."""
    version = str(winner_model.get("version"))
    note = changereason.encode(version=version, reason=f"promoted: {reason}")
    current = (md.get("spec") or {}).get("model") or {}
    annotations = (md.get("metadata") or {}).get("annotations") or {}
    if (
        str(current.get("version")) == version
        and current.get("name") == winner_model.get("name")
        and "alias" not in current
        and annotations.get(changereason.ANNOTATION) == note
    ):
        return None
    return {
        "metadata": {"annotations": {changereason.ANNOTATION: note}},
        "spec": {"model": {"name": winner_model.get("name"), "version": version, "alias": None}},
    }

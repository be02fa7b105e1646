"""Decisions the handlers used to take inline, as pure functions: SRM acknowledgement, promotion
idempotency, the history reason, and who owns Ready."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from modelpilot.operator import changereason, readiness
from modelpilot.operator.experiment import decision, promotion

NOW = dt.datetime(2026, 3, 4, 5, 6, 7, tzinfo=dt.UTC)


def test_a_spec_change_lifts_an_srm_pause_and_says_so_in_the_condition() -> None:
    paused = {
        "srm": {"pValue": 1e-9, "mismatch": True, "paused": True},
        "conditions": [
            {
                "type": "SampleRatioMismatch",
                "status": "True",
                "reason": "ChiSquareFailed",
                "message": "m",
                "lastTransitionTime": "2026-03-04T00:00:00Z",
            }
        ],
    }
    lifted = decision.acknowledge_srm(paused, now=NOW)
    assert lifted["srm"] == {"pValue": 1e-9, "mismatch": False, "paused": False}
    (cond,) = lifted["conditions"]
    assert (cond["status"], cond["reason"]) == ("False", "Acknowledged")
    assert cond["lastTransitionTime"] == "2026-03-04T05:06:07Z"
    assert paused["srm"]["paused"] is True  # the input is not modified
    assert decision.acknowledge_srm(lifted, now=NOW + dt.timedelta(hours=1)) == lifted


def _md(model: dict[str, Any], annotations: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "metadata": {"name": "iris", "annotations": annotations or {}},
        "spec": {"model": model},
    }


def test_promotion_pins_the_winner_version_and_is_a_no_op_once_done() -> None:
    winner = {"name": "iris-classifier", "version": "4"}
    patch = promotion.build_promotion_patch(
        _md({"name": "iris-classifier", "alias": "champion"}), winner_model=winner, reason="why"
    )
    assert patch is not None
    assert patch["spec"]["model"] == {"name": "iris-classifier", "version": "4", "alias": None}
    note = patch["metadata"]["annotations"][changereason.ANNOTATION]
    assert json.loads(note) == {"version": "4", "reason": "promoted: why"}
    done = _md({"name": "iris-classifier", "version": "4"}, {changereason.ANNOTATION: note})
    assert promotion.build_promotion_patch(done, winner_model=winner, reason="why") is None
    # The same version set by hand, without this promotion's note: the note is still written.
    by_hand = _md({"name": "iris-classifier", "version": "4"})
    assert promotion.build_promotion_patch(by_hand, winner_model=winner, reason="why") is not None


def test_the_history_reason_follows_its_precedence_and_ignores_stale_or_broken_notes() -> None:
    def reason(**kw: Any) -> str:
        args: dict[str, Any] = {
            "previous_version": "3",
            "version": "4",
            "reference": {"name": "m", "version": "4"},
            "annotations": None,
            "trigger": "update",
        }
        return changereason.history_reason(**{**args, **kw})

    note = changereason.encode(version="4", reason="promoted: B wins")
    assert reason(previous_version=None) == "initial deployment"
    assert reason(annotations={changereason.ANNOTATION: note}) == "promoted: B wins"
    stale = changereason.encode(version="3", reason="promoted: old")
    assert reason(annotations={changereason.ANNOTATION: stale}) == "spec.model changed"
    assert reason(annotations={changereason.ANNOTATION: "{not json"}) == "spec.model changed"
    assert reason(annotations={changereason.ANNOTATION: "[1]"}) == "spec.model changed"
    alias = {"name": "m", "alias": "champion"}
    assert reason(reference=alias, trigger="resync") == "alias champion moved"


def _cond(type_: str, status: str, reason: str = "R") -> dict[str, str]:
    return {"type": type_, "status": status, "reason": reason, "message": ""}


def test_the_reconcile_owns_ready_while_the_deployment_is_degraded() -> None:
    assert readiness.reconcile_owns_ready([_cond("Ready", "True"), _cond("Degraded", "True")])
    assert readiness.reconcile_owns_ready([_cond("Ready", "False", "RegistryUnavailable")])
    assert readiness.reconcile_owns_ready([_cond("Ready", "False", "ModelNotFound")])
    assert not readiness.reconcile_owns_ready([_cond("Ready", "False", "RollingOut")])
    assert not readiness.reconcile_owns_ready([_cond("Degraded", "False"), _cond("Ready", "True")])
    assert not readiness.reconcile_owns_ready([])
